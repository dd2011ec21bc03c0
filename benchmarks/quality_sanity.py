"""Quality sanity check: the embedded model before and after `edgewrite run recipes/quickstart.yaml`.

Exact match (against any reference) and corpus BLEU (sacrebleu, all references) on up to --limit dev
rows per task, greedy decoding with each model's own chat template and stop token; `copy` (return
the input unchanged) is the floor every editing model has to clear. The field's metrics (SARI, GLEU,
F0.5, iBLEU) come with `edgewrite eval`; this is the quick check of the tuning stage.

    python benchmarks/quality_sanity.py --data runs/quickstart/data --models default runs/quickstart/merged

Writes benchmarks/results/quality_sanity.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import sacrebleu

from edgewrite.artifacts import git_commit, tool_versions
from edgewrite.models import resolve_model
from edgewrite.runtimes import load_runtime
from edgewrite.tasks import TASK_NAMES, build_prompt


def _norm(s: str) -> str:
    return " ".join(s.split())


def score(outputs: list[str], rows: list[dict]) -> dict:
    em = sum(_norm(o) in {_norm(r) for r in row["references"]} for o, row in zip(outputs, rows, strict=True))
    n_refs = max(len(r["references"]) for r in rows)
    refs = [[row["references"][min(j, len(row["references"]) - 1)] for row in rows] for j in range(n_refs)]
    return {
        "exact_match": round(100 * em / len(rows), 1),
        "bleu": round(sacrebleu.corpus_bleu(outputs, refs).score, 2),
        "rows": len(rows),
    }


def run_model(ref: str, rows_by_task: dict[str, list[dict]], style: str) -> tuple[dict, list[dict]]:
    path = resolve_model(ref).path if ref == "default" else Path(ref)
    runtime, _ = load_runtime(path, batch_size=16)
    scores, samples = {}, []
    for task, rows in rows_by_task.items():
        prompts = [build_prompt(runtime.tokenizer, r["instruction"], r["source"], style) for r in rows]
        order = sorted(range(len(rows)), key=lambda i: len(prompts[i]))
        outs: list[str] = [""] * len(rows)
        for k in range(0, len(order), 16):
            idx = order[k : k + 16]
            longest = max(len(runtime.tokenize(rows[i]["source"])) for i in idx)
            gens = runtime.generate([prompts[i] for i in idx], max_new_tokens=min(256, int(longest * 1.5) + 16))
            for i, g in zip(idx, gens, strict=True):
                outs[i] = g.text.strip()
        scores[task] = score(outs, rows)
        samples += [
            {"task": task, "source": r["source"], "output": o, "reference": r["references"][0]}
            for r, o in list(zip(rows, outs, strict=True))[:3]
        ]
    return scores, samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="runs/quickstart/data")
    ap.add_argument("--models", nargs="+", default=["default", "runs/quickstart/merged"])
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    data = Path(a.data)
    style = json.loads((data / "manifest.json").read_text()).get("prompt_style", "chat")
    rows_by_task: dict[str, list[dict]] = defaultdict(list)
    for line in (data / "dev.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["task"] in TASK_NAMES and len(rows_by_task[row["task"]]) < a.limit:
            rows_by_task[row["task"]].append(row)
    rows_by_task = {t: rows_by_task[t] for t in TASK_NAMES if rows_by_task.get(t)}
    results = {"copy": {t: score([r["source"] for r in rows], rows) for t, rows in rows_by_task.items()}}
    samples = {}
    for ref in a.models:
        t0 = time.perf_counter()
        results[ref], samples[ref] = run_model(ref, rows_by_task, style)
        print(f"{ref}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "quality_sanity",
        "command": "python " + " ".join(sys.argv),
        "limit_per_task": a.limit,
        "data": str(data),
        "conditions": {"versions": tool_versions(), "commit": git_commit(), "device": "cpu"},
        "scores": results,
        "samples": samples,
    }
    (out / "quality_sanity.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    names = list(results)
    md = [
        f"# Quality sanity check (dev, up to {a.limit} rows per task, greedy)",
        "",
        f"Command: `{doc['command']}`",
        "",
        "Exact match % / BLEU per task. `copy` returns the input unchanged.",
        "",
        "| task | rows | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for t in rows_by_task:
        cells = [f"{results[n][t]['exact_match']} / {results[n][t]['bleu']}" for n in names]
        md.append(f"| {t} | {len(rows_by_task[t])} | " + " | ".join(cells) + " |")
    (out / "quality_sanity.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
