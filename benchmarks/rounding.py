"""How each way of rounding the merged model to 4 bits keeps its fp32 parent's answers, and what it costs
per edit, side by side in one run.

- Agreement: the fp32 parent's own greedy answers on dev rows (from the bench's row file of that cell),
  fed to each GGUF export token by token (teacher forcing): the share of answer tokens where the export's
  top choice is the parent's token, the share of answers it would reproduce whole, and the mean negative
  log-likelihood of the parent's tokens. One pass per row, no sampling noise, so rounding methods can be
  told apart on rows that the bench's task scores (41-754 rows a task, greedy near-ties) cannot.
- Speed: one-sentence edits of the same rows, one at a time, through the same editor as `assist`; the
  artifacts take turns row by row, over several rounds, in one process, so machine noise hits all of them
  alike. Reported as p50 per artifact and as the ratio to the first artifact.

    R=runs/writing-cpu-next
    python benchmarks/rounding.py $R/gguf-iq4_nl-imat $R/gguf-q4_0 $R/gguf-q4_0-imat $R/gguf-q4_0-ar50 \
        $R/gguf-q4_0-ar $R/gguf-q4_1-ar $R/gguf-q8_0 --rounds 2 \
        --parent-rows BENCH/rows/tuned_fp32__writing-cpu-next__cpu.jsonl.gz   # ~13 min on 2 cores

(BENCH: a bench of every dev row with $R/merged in it; that first run's table is in experiments/LOG.md.)

The exports: `edgewrite quantize $R/merged` with `--type IQ4_NL --rounding imatrix`, `--type Q4_0` (also with
`--rounding imatrix`), `--type Q4_0 --rounding autoround:50 --out $R/gguf-q4_0-ar50` (4 min),
`--type Q4_0 --rounding autoround:200` (13 min), `--type Q4_1 --rounding autoround:200` and `--type Q8_0`.

Writes OUT/rounding.{json,md} (--out, default benchmarks/results).

The shipped model's exports (the merge of the shipped adapter; runs/writing-* from `edgewrite quantize writing
--type Q4_0 --rounding autoround:200 --calibration runs/wdata`, plain (runs/writing-ar, shipped until the lifted one),
with `--tensor-type 'blk\\.(0|1|2|5|8|11|14|17|20|23|26|27|28|29)\\.(attn_v|ffn_down)=Q8_0'` (runs/writing-armix,
shipped now) and with `--samples 1024` (runs/writing-ar1024)), measured in runs/rounding2 and re-rendered:

    python benchmarks/rounding.py runs/writing-ar runs/writing-armix runs/writing-ar1024 --rounds 2 \
        --parent-rows benchmarks/results/bench-shipped/rows/tuned_fp32__cpu.jsonl.gz --out runs/rounding2  # 11 min
    cp runs/rounding2/rounding.json benchmarks/results/rounding_lifted.json
    python benchmarks/rounding.py --render-only --name rounding_lifted

Writes benchmarks/results/rounding_lifted.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.artifacts import git_commit, read_manifest, tool_versions, write_text_atomic  # noqa: E402
from edgewrite.bench import cpu_name, percentile, read_rows  # noqa: E402
from edgewrite.errors import EdgewriteError  # noqa: E402
from edgewrite.measure import agreement, interleaved  # noqa: E402
from edgewrite.measure import parent_rows as parent_sample  # noqa: E402


def describe(path: Path, manifest: dict) -> str:
    from edgewrite.bench import describe as bench_describe

    label = bench_describe(path, manifest)["label"].removeprefix("tuned gguf ")
    settings = manifest.get("settings", {})
    steps, rows = settings.get("autoround_iters"), settings.get("calibration_rows")
    if not steps:
        return label
    return f"{label} ({steps} steps{'' if rows in (None, 256) else f', {rows} calibration rows'})"


def main() -> None:
    from edgewrite.edit import ModelEditor
    from edgewrite.runtimes import load_runtime

    ap = argparse.ArgumentParser()
    ap.add_argument("artifacts", nargs="*", help="GGUF export folders; the first is the speed reference")
    ap.add_argument("--parent-rows", help="the bench's row file of the fp32 parent's cell")
    ap.add_argument("--rows-per-task", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--name", default="rounding", help="results file name: OUT/NAME.json and OUT/NAME.md")
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="re-render OUT/NAME.json (labels from the exports' manifests, which must still exist); measure nothing",
    )
    a = ap.parse_args()
    out = Path(a.out)
    if a.render_only:
        source = out / f"{a.name}.json"
        if not source.is_file():
            raise EdgewriteError(f"{source} does not exist; measure first (without --render-only), or fix --out/--name")
        doc = json.loads(source.read_text())
        for r in doc["results"]:
            r["label"] = describe(Path(r["artifact"]), read_manifest(Path(r["artifact"])))
        doc["render_command"] = "python " + " ".join(sys.argv)
        write_text_atomic(out / f"{a.name}.json", json.dumps(doc, indent=2) + "\n")
        write_text_atomic(out / f"{a.name}.md", render(doc))
        print(render(doc))
        return
    if not a.artifacts or not a.parent_rows:
        raise EdgewriteError("give the GGUF export folders and --parent-rows (or --render-only)")
    out.mkdir(parents=True, exist_ok=True)  # before the work, so a bad --out fails at once
    parent_rows = Path(a.parent_rows)
    if not parent_rows.is_file() and Path(a.parent_rows + ".gz").is_file():  # bench rows are compressed now
        parent_rows = Path(a.parent_rows + ".gz")
    if not parent_rows.is_file():
        raise EdgewriteError(f"{parent_rows} does not exist; give the bench's rows/<cell>.jsonl.gz of the fp32 parent")
    manifests = {x: read_manifest(Path(x)) for x in a.artifacts}
    for x, m in manifests.items():
        if m.get("format") != "gguf":
            raise EdgewriteError(f"{x} is not a GGUF export; this benchmark compares llama.cpp roundings")
    rows = parent_sample(read_rows(parent_rows), a.rows_per_task)
    runtimes = {x: load_runtime(Path(x), threads=2, batch_size=1)[0] for x in a.artifacts}
    results = []
    for x, rt in runtimes.items():
        agree = agreement(rt, rows, manifests[x]["stop_token"], manifests[x].get("prompt_style", "chat"))
        kept = f"token agreement {agree['token_agreement']:.4f}, answers kept {agree['answers_kept']:.3f}"
        print(f"{x}: {kept}", flush=True)
        results.append({"artifact": x, "label": describe(Path(x), manifests[x]), "agreement": agree})
    editors = {x: ModelEditor(rt, manifests[x].get("prompt_style", "chat")) for x, rt in runtimes.items()}
    timed = interleaved(
        {x: (lambda r, e=e: e.edit(r["task"], [r["source"]])) for x, e in editors.items()},
        rows,
        a.rounds,
        on_round=lambda k: print(f"speed: round {k}/{a.rounds} done", flush=True),
    )
    lat = {x: [t.ms for t in v] for x, v in timed.items()}
    ref = statistics.mean(lat[a.artifacts[0]])
    for r in results:
        values = lat[r["artifact"]]
        r["edit_ms"] = {
            "p50": round(percentile(values, 0.5), 1),
            "p95": round(percentile(values, 0.95), 1),
            "mean": round(statistics.mean(values), 1),
            "mean_vs_first": round(statistics.mean(values) / ref, 3),
        }
    for rt in runtimes.values():
        rt.close()
    doc = {
        "benchmark": "rounding",
        "command": "python " + " ".join(sys.argv),
        "conditions": {"cpu": cpu_name(), "threads": 2, "versions": tool_versions(), "commit": git_commit()},
        "parent_rows": str(parent_rows),
        "rows": len(rows),
        "rounds": a.rounds,
        "results": results,
    }
    write_text_atomic(out / f"{a.name}.json", json.dumps(doc, indent=2) + "\n")
    md = render(doc)
    write_text_atomic(out / f"{a.name}.md", md)
    print(md)


def render(doc: dict) -> str:
    results = doc["results"]
    tasks = sorted(results[0]["agreement"]["tasks"])
    md = [
        "# Rounding to 4 bits: agreement with the fp32 parent, and edit speed side by side"
        f" ({doc['conditions']['cpu']}, 2 threads)",
        "",
        f"Command: `{doc['command']}`"
        + (f"; labels re-rendered by `{doc['render_command']}`" if doc.get("render_command") else ""),
        "",
        "| export | answer tokens agreeing | answers kept whole | NLL of parent's tokens | "
        + " | ".join(tasks)
        + " | edit p50 / p95 ms | mean edit vs first |",
        "|---|---|---|---|" + "---|" * len(tasks) + "---|---|",
    ]
    for r in results:
        g, e = r["agreement"], r["edit_ms"]
        md.append(
            f"| {r['label']} | {g['token_agreement']:.2%} | {g['answers_kept']:.0%} | {g['nll']:.3f} | "
            + " | ".join(f"{g['tasks'][t]['token_agreement']:.1%}" for t in tasks)
            + f" | {e['p50']:.0f} / {e['p95']:.0f} | {e['mean_vs_first']:.2f}x |"
        )
    first = results[0]["label"]
    md += [
        "",
        f"{doc['rows']} dev rows ({doc['rows'] // len(tasks)} per task, seeded), the fp32 parent's greedy answers"
        f" from `{doc['parent_rows']}`. *Answer tokens agreeing*: teacher-forced, the export's top token is the"
        " parent's (per task in the task columns); *answers kept whole*: every token of the answer agrees, so"
        " greedy decoding would reproduce it. Speed: the same rows edited one at a time through the `assist`"
        f" editor, the exports taking turns row by row, {doc['rounds']} rounds; *mean edit vs first*: against"
        f" {first}. Absolute times run above the bench's: the exports take turns, so none stays in the CPU's"
        " caches; the ratio is the figure to read.",
        "",
    ]
    return "\n".join(md)


if __name__ == "__main__":
    try:
        main()
    except EdgewriteError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
