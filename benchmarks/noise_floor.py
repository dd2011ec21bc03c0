"""How far one artifact moves from itself: the same model and greedy decoding, run twice with a different
batch composition (llama.cpp decodes the prompts of a batch together, and a different set of sequences in
a forward pass rounds a little differently). The share of rows whose output changes, and the per-task
"retention" of one run against the other, are the floor under any comparison of two artifacts: a 4-bit
export cannot be shown to keep 98 % of its parent's score on a task where the parent does not keep 98 %
of its own.

    python benchmarks/noise_floor.py ARTIFACT [ARTIFACT...] [--batch-sizes 1,16] [--fp32 LABEL] [--out DIR]

Each artifact is scored on every row of each task's headline dev set at each batch size (one process, one
after another, 2 threads); the runs are compared pairwise with the bench's paired bootstrap. With
``--fp32 LABEL`` each run's score is also given as a share of that bench cell's (the artifact's fp32 parent);
``--render-only`` re-renders the saved JSON (adding ``--fp32``) without running anything.
Writes benchmarks/results/noise_floor.{json,md} (README: <!-- results:noise_floor -->).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.bench import cpu_name  # noqa: E402
from edgewrite.measure import compare_outputs  # noqa: E402


def run(artifact: str, batch: int, data_dir: Path, threads: int) -> dict:
    from edgewrite.edit import load_editor
    from edgewrite.evaluate import gather, run_eval, score_outputs

    editor, _ = load_editor(Path(artifact), threads=threads, batch_size=batch)
    sets = gather(data_dir, None, "dev", None, headline_only=True)
    t0 = time.perf_counter()
    done = [0]
    total = sum(len(s.rows) for s in sets)

    def progress(n: int) -> None:
        before = done[0] * 20 // total
        done[0] += n
        if done[0] * 20 // total > before:
            print(f"  {artifact} batch {batch}: {done[0]}/{total} rows", flush=True)

    outputs, _, _ = run_eval(editor, sets, progress=progress, batch_size=batch)
    if hasattr(editor, "close"):
        editor.close()
    return {"sets": sets, "outputs": outputs, "quality": score_outputs(sets, outputs), "s": time.perf_counter() - t0}


def compare(a: dict, b: dict) -> dict:
    result = compare_outputs(a["sets"], a["outputs"], b["outputs"], headlines=True)
    result.pop("headline")
    return result


def render(doc: dict) -> list[str]:
    results = doc["results"]
    tasks = list(next(iter(results[0]["runs"].values()))["headline"])
    lines = [
        f"# The same artifact against itself: batch composition alone ({doc['cpu']}, {doc['threads']} threads)",
        "",
        f"Command: `{doc['command']}`. Every row of each task's headline dev set, greedy decoding, the same model"
        " file; only the number of prompts decoded together changes.",
        "",
        "| artifact | batches | rows whose output changes | mean a - b | "
        + " | ".join(tasks)
        + " | lowest task ratio |",
        "|---|---|---|---|" + "---|" * len(tasks) + "---|",
    ]
    for r in results:
        for pr in r["pairs"]:
            d = pr["delta"]
            cells = [
                f"{d[t]['value']:+.1f} [{d[t]['lo']:+.1f}, {d[t]['hi']:+.1f}] ({pr['differ_per_task'][t] * 100:.0f}%)"
                for t in tasks
            ]
            worst = min(pr["lower_over_higher_pct"], key=pr["lower_over_higher_pct"].get)
            lines.append(
                f"| {r['artifact']} | {pr['batches'][0]} vs {pr['batches'][1]} | {pr['differ'] * 100:.1f}% | "
                f"{d['mean']['value']:+.1f} [{d['mean']['lo']:+.1f}, {d['mean']['hi']:+.1f}] | "
                + " | ".join(cells)
                + f" | {worst} {pr['lower_over_higher_pct'][worst]:.1f}% |"
            )
    lines += [
        "",
        "Per task: the paired difference of the headline score between the two runs (95 % bootstrap interval) and,"
        " in brackets, the share of that task's rows whose output changed. *lowest task ratio*: the lower run's"
        " score over the higher run's on the task where they are furthest apart.",
    ]
    if fp32 := doc.get("fp32"):
        ref = fp32["headline"]
        ref_mean = sum(ref.values()) / len(ref)
        lines += [
            "",
            f"Each run's score as a share of the fp32 model's ({fp32['label']}, the bench's cell: batched 16):",
            "",
            "| artifact | batch | mean | " + " | ".join(tasks) + " | lowest |",
            "|---|---|---|" + "---|" * len(tasks) + "---|",
        ]
        for r in results:
            for b, run_ in r["runs"].items():
                kept = {t: run_["headline"][t] / ref[t] * 100 for t in tasks if ref.get(t)}
                worst = min(kept, key=kept.get)
                lines.append(
                    f"| {r['artifact']} | {b} | {run_['mean'] / ref_mean * 100:.1f}% | "
                    + " | ".join(f"{kept[t]:.1f}%" for t in tasks)
                    + f" | {worst} {kept[worst]:.1f}% |"
                )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="*")
    p.add_argument("--batch-sizes", default="1,16")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fp32", help="a bench cell's label: each run's per-task share of its score")
    p.add_argument("--bench", type=Path, default=ROOT / "benchmarks" / "results" / "bench-shipped" / "bench.json")
    p.add_argument("--render-only", action="store_true", help="re-render the saved noise_floor.json, run nothing")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    if args.render_only:
        saved = args.out / "noise_floor.json"
        if not saved.is_file():
            print(f"error: {saved} does not exist; run the benchmark first (without --render-only)", file=sys.stderr)
            sys.exit(2)
        doc = json.loads(saved.read_text())
    else:
        if not args.artifacts:
            print("error: give one or more artifact folders", file=sys.stderr)
            sys.exit(2)
        doc = measure(args)
    if args.fp32:
        cells = json.loads(args.bench.read_text())["cells"]
        cell = next((c for c in cells if c["label"] == args.fp32), None)
        if cell is None:
            print(f"error: no cell labelled {args.fp32!r} in {args.bench}", file=sys.stderr)
            sys.exit(2)
        doc["fp32"] = {"label": args.fp32, "bench": str(args.bench), "headline": cell["quality"]["headline"]}
        if args.render_only and "--fp32" not in doc["command"]:
            doc["command"] += f"`, then `python benchmarks/noise_floor.py --render-only --fp32 '{args.fp32}'"
    lines = render(doc)
    args.out.mkdir(parents=True, exist_ok=True)
    files = {"noise_floor.json": json.dumps(doc, indent=1) + "\n", "noise_floor.md": "\n".join(lines) + "\n"}
    for name, text in files.items():
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(args.out / name)
    print("\n".join(lines))


def measure(args: argparse.Namespace) -> dict:
    batches = [int(b) for b in args.batch_sizes.split(",")]
    for a in args.artifacts:
        if not (Path(a) / "manifest.json").is_file():
            print(f"error: {a} is not an artifact folder (no manifest.json)", file=sys.stderr)
            sys.exit(2)
    results = []
    for art in args.artifacts:
        runs = {}
        for b in batches:
            print(f"{art}: batch {b}", flush=True)
            runs[b] = run(art, b, args.data_dir, args.threads)
        pairs = [{"batches": [x, y], **compare(runs[x], runs[y])} for x, y in combinations(batches, 2)]
        results.append(
            {
                "artifact": art,
                "runs": {
                    str(b): {"headline": r["quality"]["headline"], "mean": r["quality"]["mean"], "s": round(r["s"])}
                    for b, r in runs.items()
                },
                "pairs": pairs,
            }
        )
    command = "python benchmarks/noise_floor.py " + " ".join(args.artifacts) + f" --batch-sizes {args.batch_sizes}"
    if args.fp32:
        command += f" --fp32 '{args.fp32}'"
    return {"command": command, "cpu": cpu_name(), "threads": args.threads, "results": results}


if __name__ == "__main__":
    main()
