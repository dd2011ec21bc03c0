"""Edits worth taking: each edit's confidence against what dropping the unsure ones does to every task.

The served model edits every row of each task's headline dev set, plus CWEB-G dev for grammar (the
eval path, batched as the bench batches); each edit gets its confidence from the model
(edgewrite.edit.confidence: p(edit) / (p(edit) + p(keep)) where the answer and the answer without that
edit part). Then, per threshold, the edits below it are dropped (a unit whose edits all go comes back
unchanged) and the task's headline metric is scored, with a paired bootstrap against the plain model on
the same rows; for grammar, M2 precision and recall give the precision-recall curve. The policy per task
is: Harper first where it is significantly better, a second pass of the model over its own output where that
is, else the threshold with the highest score among those significantly above the plain model, else none
(ties go to the simpler setting).

    python benchmarks/edit_confidence.py [MODEL]        # default: the shipped model as served
    python benchmarks/edit_confidence.py --reconfidence # the cached outputs, confidences computed again

Writes benchmarks/results/edit_confidence/ (or --out DIR: a candidate's study) {results.json,results.md,curves.svg,
rows.jsonl.gz}; rows.jsonl.gz
holds every output and edit with its confidence, and a re-run reuses it (delete it to decode again).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.bootstrap import paired  # noqa: E402
from edgewrite.edit.spans import Suggestion, apply_suggestions  # noqa: E402
from edgewrite.evaluate import gather, headline_choice, headline_scorers, score_outputs  # noqa: E402

THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
OUT = ROOT / "benchmarks" / "results" / "edit_confidence"


def _decode(
    model: str, sets: list, cache: Path, pre: str | None = None, reconfidence: bool = False
) -> dict[str, list[dict]]:
    """Per set: {output, edits (with confidence; none behind a pre-pass)} per row, from the cache or the
    model; ``reconfidence``: the cached outputs, their confidences computed again."""
    if cache.is_file():
        with gzip.open(cache, "rt", encoding="utf-8") as f:
            cached = [json.loads(line) for line in f]
        by_key: dict[str, list[dict]] = {}
        for r in cached:
            by_key.setdefault(r["set"], []).append(r)
        if all(len(by_key.get(s.key, [])) == len(s.rows) for s in sets):
            if reconfidence and not pre:
                return _confidences(model, sets, {k: [r["output"] for r in v] for k, v in by_key.items()}, cache)
            return by_key
    from edgewrite.edit import load_editor
    from edgewrite.evaluate import run_eval
    from edgewrite.shipped import artifact_path

    path = artifact_path(model, log=print)
    editor, manifest = load_editor(path, batch_size=16, pre=pre)
    total = sum(len(s.rows) for s in sets)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if done[0] % 100 < n:
            print(f"decoded {done[0]}/{total}", flush=True)

    t0 = time.perf_counter()
    outputs, _, _ = run_eval(editor, sets, progress=tick, batch_size=16)
    print(f"decoded {total} rows in {time.perf_counter() - t0:.0f} s", flush=True)
    editor.close()
    return _confidences(model, sets, outputs, cache, pre)


def _confidences(
    model: str, sets: list, outputs: dict[str, list[str]], cache: Path, pre: str | None = None
) -> dict[str, list[dict]]:
    from edgewrite.edit import load_editor
    from edgewrite.edit.confidence import unit_confidences
    from edgewrite.edit.spans import suggestions
    from edgewrite.shipped import artifact_path
    from edgewrite.tasks import TASKS, build_prompt

    editor, manifest = (None, {}) if pre else load_editor(artifact_path(model), batch_size=16)
    total = sum(len(s.rows) for s in sets)
    runtime, style = getattr(editor, "runtime", None), manifest.get("prompt_style", "chat")
    result: dict[str, list[dict]] = {}
    t0, n = time.perf_counter(), 0
    tmp = cache.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for s in sets:
            instruction = TASKS[s.spec.task].default_instruction
            for row, output in zip(s.rows, outputs[s.key], strict=True):
                if pre:  # the model edited the pre-pass's output: no confidence against the source
                    edits = [e.to_dict() for e in suggestions(row["source"], output)]
                else:
                    prompt = build_prompt(runtime.tokenizer, instruction, row["source"], style)
                    edits = [e.to_dict() for e in unit_confidences(runtime, prompt, row["source"], output)]
                record = {"set": s.key, "id": row["id"], "output": output, "edits": edits}
                result.setdefault(s.key, []).append(record)
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
                if n % 100 == 0:
                    print(f"confidences {n}/{total} ({time.perf_counter() - t0:.0f} s)", flush=True)
    tmp.replace(cache)
    if editor is not None:
        editor.close()
    return result


def _second_pass(model: str, sets: list, first: dict[str, list[str]], cache: Path) -> dict[str, list[str]]:
    """The model over its own first-pass outputs (GEC systems often iterate), from the cache or the model:
    per set, the second answer for each row (scored later against the row's own source and references)."""
    import dataclasses

    if cache.is_file():
        with gzip.open(cache, "rt", encoding="utf-8") as f:
            cached = [json.loads(line) for line in f]
        by_key: dict[str, list[str]] = {}
        for r in cached:
            by_key.setdefault(r["set"], []).append(r["output"])
        if all(len(by_key.get(s.key, [])) == len(s.rows) for s in sets):
            return by_key
    from edgewrite.edit import load_editor
    from edgewrite.evaluate import run_eval
    from edgewrite.shipped import artifact_path

    again = [
        dataclasses.replace(s, rows=[{**r, "source": o} for r, o in zip(s.rows, first[s.key], strict=True)])
        for s in sets
    ]
    editor, _ = load_editor(artifact_path(model, log=print), batch_size=16)
    total, done, t0 = sum(len(s.rows) for s in sets), [0], time.perf_counter()

    def tick(n: int) -> None:
        done[0] += n
        if done[0] % 100 < n:
            print(f"second pass {done[0]}/{total}", flush=True)

    outputs, _, _ = run_eval(editor, again, progress=tick, batch_size=16)
    editor.close()
    print(f"second pass over {total} rows in {time.perf_counter() - t0:.0f} s", flush=True)
    tmp = cache.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for s in sets:
            for row, out in zip(s.rows, outputs[s.key], strict=True):
                f.write(json.dumps({"set": s.key, "id": row["id"], "output": out}, ensure_ascii=False) + "\n")
    tmp.replace(cache)
    return outputs


def _outputs(sets: list, decoded: dict[str, list[dict]], threshold: float) -> dict[str, list[str]]:
    out = {}
    for s in sets:
        texts = []
        for row, rec in zip(s.rows, decoded[s.key], strict=True):
            edits = [Suggestion(**e) for e in rec["edits"]]
            kept = [e for e in edits if e.confidence is None or e.confidence >= threshold]
            texts.append(rec["output"] if len(kept) == len(edits) else apply_suggestions(row["source"], kept)[0])
        out[s.key] = texts
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="writing")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--reconfidence", action="store_true", help="compute the confidences of the cached outputs again"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help="results folder (a candidate's study beside the shipped one's)"
    )
    parser.add_argument(
        "--write-policy",
        action="store_true",
        help="write the chosen policy beside the shipped adapter (edgewrite/shipped/writing/policy.json)",
    )
    args = parser.parse_args()
    sets = gather(args.data_dir, None, "dev", None, headline_only=True)
    sets += [s for s in gather(args.data_dir, ["grammar"], "dev", None) if s.key == "grammar/cweb-G"]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    decoded = _decode(args.model, sets, out / "rows.jsonl.gz", reconfidence=args.reconfidence)
    head = [s for s in sets if s.key != "grammar/cweb-G"]
    choice = headline_choice(head)
    plain = _outputs(sets, decoded, 0.0)
    plain_scorers = headline_scorers(head, plain)
    curves: dict[str, list[dict]] = {task: [] for task in choice}
    grammar_pr: dict[str, list[dict]] = {}
    for t in THRESHOLDS:
        outs = _outputs(sets, decoded, t)
        q = score_outputs(head, outs)
        diff = paired(headline_scorers(head, outs), plain_scorers)
        kept = sum(1 for s in head for rec in decoded[s.key] for e in rec["edits"] if (e["confidence"] or 1.0) >= t)
        for task in choice:
            curves[task].append(
                {
                    "threshold": t,
                    "score": q["headline"][task],
                    "ci": q["headline_ci"][task],
                    "vs_plain": diff[task].as_dict(),
                }
            )
        for key in ("grammar/conll2013", "grammar/cweb-G"):
            s = next(x for x in sets if x.key == key)
            got = score_outputs([s], {key: outs[key]}, resamples=0)["sets"][key]
            grammar_pr.setdefault(key, []).append(
                {"threshold": t, **{m: got[m] for m in ("precision", "recall", "f0.5") if m in got}}
            )
        print(f"threshold {t}: mean {q['mean']:.2f}, {kept} edits kept", flush=True)
    prepass = _decode(args.model, sets, out / "rows-pre-harper.jsonl.gz", pre="harper")
    pre_outs = _outputs(sets, prepass, 0.0)
    pre_q = score_outputs(head, pre_outs)
    pre_diff = paired(headline_scorers(head, pre_outs), plain_scorers)
    harper = {task: {"score": pre_q["headline"][task], "vs_plain": pre_diff[task].as_dict()} for task in choice}
    twice = _second_pass(args.model, sets, plain, out / "rows-second-pass.jsonl.gz")
    twice_q = score_outputs(head, twice)
    twice_diff = paired(headline_scorers(head, twice), plain_scorers)
    second = {task: {"score": twice_q["headline"][task], "vs_plain": twice_diff[task].as_dict()} for task in choice}
    for key in ("grammar/conll2013", "grammar/cweb-G"):
        s = next(x for x in sets if x.key == key)
        got = score_outputs([s], {key: twice[key]}, resamples=0)["sets"][key]
        second_pr = {m: got[m] for m in ("precision", "recall", "f0.5") if m in got}
        grammar_pr.setdefault(f"{key} second pass", []).append({"threshold": 0.0, **second_pr})
    policy = {}
    for task, rows in curves.items():
        best = max(
            (r for r in rows if r["threshold"] > 0 and r["vs_plain"]["lo"] > 0),
            key=lambda r: (round(r["score"], 6), -r["threshold"]),
            default=None,
        )
        # the thresholds were measured on one pass: a task that takes a second pass keeps every edit
        passes = 2 if second[task]["vs_plain"]["lo"] > 0 else None
        policy[task] = {
            "pre": "harper" if harper[task]["vs_plain"]["lo"] > 0 else None,
            "passes": passes,
            "threshold": best["threshold"] if best and passes is None else None,
        }
    commit = (
        __import__("subprocess")
        .run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        .stdout.strip()
    )
    from edgewrite.bench import cpu_name

    doc = {
        "command": "python benchmarks/edit_confidence.py"
        + (f" {args.model}" if args.model != "writing" else "")
        + (f" --out {out}" if out != OUT else ""),
        "model": args.model,
        "commit": commit,
        "cpu": cpu_name(),
        "rows": {s.key: len(s.rows) for s in sets},
        "curves": curves,
        "grammar_pr": grammar_pr,
        "harper_pre_pass": harper,
        "second_pass": second,
        "policy": policy,
    }
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out / "results.json")
    _render(doc, out)
    if args.write_policy:
        _write_policy(args.model, doc)


def _write_policy(model: str, doc: dict) -> None:
    from edgewrite.artifacts import read_manifest
    from edgewrite.edit.policy import POLICY_FILE
    from edgewrite.models import WRITING, shipped_adapter

    if model != WRITING:
        raise SystemExit("--write-policy writes the shipped model's policy: run it on 'writing'")
    folder = shipped_adapter(WRITING)
    policy = {
        "adapter_fingerprint": read_manifest(folder)["fingerprint"],
        "chosen_by": f"{doc['command']} --write-policy (commit {doc['commit']})",
        "rule": "per task: Harper first if significantly better than the plain model on dev; a second pass of the "
        "model over its own output if significantly better; else the best confidence threshold significantly above "
        "the plain model; otherwise none (ties to the simpler setting)",
        "tasks": {task: {k: v for k, v in p.items() if v is not None} for task, p in doc["policy"].items()},
    }
    tmp = folder / f"{POLICY_FILE}.tmp"
    tmp.write_text(json.dumps(policy, indent=2) + "\n")
    tmp.replace(folder / POLICY_FILE)
    print(f"wrote {folder / POLICY_FILE}")


def _render(doc: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        f"Command: `{doc['command']}` (commit {doc['commit']}, {doc['cpu']}). Rows: "
        + ", ".join(f"{k} {n}" for k, n in doc["rows"].items())
        + ".",
        "",
        "Headline score per task when edits below the confidence threshold are dropped; in brackets the "
        "paired difference from the plain model (threshold 0) with its 95 % interval (* = excludes 0).",
        "",
        "| threshold | " + " | ".join(doc["curves"]) + " |",
        "|---|" + "---|" * len(doc["curves"]),
    ]
    for i, t in enumerate(THRESHOLDS):
        cells = []
        for rows in doc["curves"].values():
            r, d = rows[i], rows[i]["vs_plain"]
            star = "*" if d["lo"] > 0 or d["hi"] < 0 else ""
            cells.append(f"{r['score']:.1f} ({d['value']:+.1f} [{d['lo']:+.1f}, {d['hi']:+.1f}]{star})")
        lines.append(f"| {t:g} | " + " | ".join(cells) + " |")
    curves_pr = {k: v for k, v in doc["grammar_pr"].items() if not k.endswith("second pass")}
    lines += ["", "Grammar edits, M2 precision / recall / F0.5 by threshold:", ""]
    lines += ["| threshold | " + " | ".join(curves_pr) + " |", "|---|" + "---|" * len(curves_pr)]
    for i, t in enumerate(THRESHOLDS):
        cells = [
            f"P {r[i]['precision']:.1f} / R {r[i]['recall']:.1f} / F0.5 {r[i]['f0.5']:.1f}" for r in curves_pr.values()
        ]
        lines.append(f"| {t:g} | " + " | ".join(cells) + " |")
    twice_pr = {k: v[0] for k, v in doc["grammar_pr"].items() if k.endswith("second pass")}
    if twice_pr:
        lines.append(
            "| second pass | "
            + " | ".join(
                f"P {r['precision']:.1f} / R {r['recall']:.1f} / F0.5 {r['f0.5']:.1f}" for r in twice_pr.values()
            )
            + " |"
        )
    variants = [("harper_pre_pass", "Harper as a pre-pass (its fixes first, then the model), against the plain model:")]
    variants.append(
        ("second_pass", "A second pass of the model over its own output, against the plain model (one pass):")
    )
    for key, title in variants:
        if not doc.get(key):
            continue
        lines += ["", title, "", "| task | score | vs plain |", "|---|---|---|"]
        for task, r in doc[key].items():
            d = r["vs_plain"]
            star = "*" if d["lo"] > 0 or d["hi"] < 0 else ""
            lines.append(f"| {task} | {r['score']:.1f} | {d['value']:+.1f} [{d['lo']:+.1f}, {d['hi']:+.1f}]{star} |")
    chosen = "; ".join(
        f"{task}: pre-pass {p['pre'] or 'none'}, passes {p.get('passes') or 1}, "
        f"threshold {p['threshold'] if p['threshold'] is not None else 'none'}"
        for task, p in doc["policy"].items()
    )
    lines += [
        "",
        "Policy (per task: Harper first if it is significantly better than the plain model; a second pass if it is "
        "significantly better; else the best threshold significantly above the plain model; otherwise none): "
        f"{chosen}.",
    ]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for key, rows in curves_pr.items():
        a.plot([100 * r["recall"] for r in rows], [100 * r["precision"] for r in rows], marker="o", label=key)
    a.set_xlabel("recall (%)")
    a.set_ylabel("precision (%)")
    a.set_title("grammar edits by confidence threshold")
    a.legend()
    for task, rows in doc["curves"].items():
        b.plot([r["threshold"] for r in rows], [r["vs_plain"]["value"] for r in rows], marker="o", label=task)
    b.axhline(0, color="grey", lw=0.8)
    b.set_xlabel("confidence threshold")
    b.set_ylabel("headline score minus the plain model")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.svg")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
