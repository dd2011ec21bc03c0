"""How close each runtime decodes to what the memory bus allows, and what copy-speculation and prefix
reuse buy on real edits.

- Bandwidth: a large numpy array copied (read + write) by 1 and by 2 threads.
- Bound: decoding one token reads every weight once, so tok/s <= bandwidth / weight bytes.
- Measured: greedy decode tok/s of each runtime (plain decoding, median of 3 after a warm-up), as a
  fraction of the bound.
- Edits: one-sentence edit latency p50/p95 on a seeded sample of dev rows of every task, with the
  speed-ups off (no drafts, no prefix reuse), as they were before (``MODES["before"]``) and as they are
  now, in one run, side by side (the modes take turns task by task); and how many outputs are identical
  between plain and now (greedy; differences are rounding near-ties, see tests).

    R=runs/writing-smollm2-135m-cpu
    python benchmarks/decode_limits.py $R/gguf-iq4_nl $R/gguf-q4_k_m $R/gguf-q4_0 $R/onnx-int4 \
        --rows-per-task 40   # ~12 min on 2 cores

Writes benchmarks/results/decode_limits.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.artifacts import git_commit, read_manifest, tool_versions, write_text_atomic  # noqa: E402
from edgewrite.bench import cpu_name, percentile  # noqa: E402
from edgewrite.measure import decode_bound, interleaved, weight_bytes  # noqa: E402
from edgewrite.measure import memory_bandwidth as bandwidth  # noqa: E402


def decode_speed(runtime, prompt: str) -> float:  # noqa: ANN001
    runtime.generate([prompt], 8)
    speeds = []
    for _ in range(3):
        (g,) = runtime.generate([prompt], 128)
        speeds.append((g.new_tokens - 1) / g.decode_s if g.new_tokens > 1 and g.decode_s > 0 else 0.0)
    return statistics.median(speeds)


# Decoding settings compared on the same edits. "before" is copy-speculation as it was before drafts
# rode in the prompt's own pass (10 draft tokens, none in the first pass), kept for the side-by-side.
MODES = {
    "plain": {"draft_tokens": 0, "draft_opening": False, "prefix_cache": False},
    "before": {"draft_tokens": 10, "draft_opening": False, "prefix_cache": True},
    "now": {},  # the runtime's defaults
}


def set_mode(runtime, mode: str, defaults: dict) -> None:  # noqa: ANN001
    """Apply a mode's settings (a switch the runtime lacks is skipped: ONNX does not speculate)."""
    for name, value in {**defaults, **MODES[mode]}.items():
        if hasattr(runtime, name):
            setattr(runtime, name, value)


def edit_latency(runtime, manifest: dict, rows: list[tuple[str, str]], modes: list[str]) -> dict[str, tuple]:  # noqa: ANN001
    """Each mode edits every row, one at a time, task by task: for each task the modes take turns over
    its rows (order rotated per task), so a slow minute on a shared machine falls on all of them."""
    from edgewrite.edit import ModelEditor

    switches = ("draft_tokens", "draft_opening", "prefix_cache")
    defaults = {n: getattr(runtime, n) for n in switches if hasattr(runtime, n)}
    editor = ModelEditor(runtime, manifest.get("prompt_style", "chat"))
    editor.edit(rows[0][0], [rows[0][1]])
    tasks = list(dict.fromkeys(task for task, _ in rows))

    def run(mode: str):  # noqa: ANN202
        def block(task: str) -> list[tuple[float, str]]:
            set_mode(runtime, mode, defaults)
            done = []
            for text in (t for k, t in rows if k == task):
                t0 = time.perf_counter()
                (e,) = editor.edit(task, [text])
                done.append(((time.perf_counter() - t0) * 1000, e.output))
            return done

        return block

    timed = interleaved({m: run(m) for m in modes}, tasks, warmup=False)
    latencies = {m: [ms for t in timed[m] for ms, _ in t.result] for m in modes}
    outputs = {m: [out for t in timed[m] for _, out in t.result] for m in modes}
    set_mode(runtime, "now", defaults)
    return {m: (latencies[m], outputs[m]) for m in modes}


def main() -> None:
    from edgewrite.evaluate import gather
    from edgewrite.runtimes import load_runtime
    from edgewrite.tasks import TASKS, build_prompt

    ap = argparse.ArgumentParser()
    ap.add_argument("artifacts", nargs="+")
    ap.add_argument("--rows-per-task", type=int, default=200)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)  # before the work, so a bad --out fails at once
    manifests = {artifact: read_manifest(Path(artifact)) for artifact in a.artifacts}  # every path, up front
    bw = {1: round(bandwidth(1, 512), 1), 2: round(bandwidth(2, 512), 1)}
    print(f"bandwidth: {bw[1]} GB/s on 1 thread, {bw[2]} GB/s on 2", flush=True)
    sets = gather(ROOT.parent / "shared" / "data", None, "dev", a.rows_per_task, headline_only=True)
    rows = [(s.spec.task, r["source"]) for s in sets for r in s.rows]
    long_text = " ".join(r["source"] for r in sets[0].rows[:6])
    results = []
    for artifact in a.artifacts:
        path, manifest = Path(artifact), manifests[artifact]
        runtime, _ = load_runtime(path, threads=2, batch_size=1)
        prompt = build_prompt(
            runtime.tokenizer, TASKS["paraphrase"].default_instruction, long_text, manifest["prompt_style"]
        )
        nbytes = weight_bytes(path, manifest)
        bound = decode_bound(nbytes, bw[2])
        tps = decode_speed(runtime, prompt)
        print(f"{artifact}: decode {tps:.1f} tok/s ({tps / bound:.0%} of the bound); {len(rows)} edits", flush=True)
        modes = [m for m in MODES if m != "before" or hasattr(runtime, "draft_tokens")]
        timed = edit_latency(runtime, manifest, rows, modes)
        summary = {
            m: {
                "p50_ms": round(percentile(lat, 0.5), 1),
                "p95_ms": round(percentile(lat, 0.95), 1),
                "mean_ms": round(statistics.mean(lat), 1),
            }
            for m, (lat, _) in timed.items()
        }
        print(f"{artifact}: " + "; ".join(f"{m} p50 {v['p50_ms']:.0f} ms" for m, v in summary.items()), flush=True)
        results.append(
            {
                "artifact": artifact,
                "runtime": runtime.name,
                "weight_mb": round(nbytes / 1e6, 1),
                "bound_tok_s": round(bound, 1),
                "decode_tok_s": round(tps, 1),
                "fraction_of_bound": round(tps / bound, 3),
                "rows": len(rows),
                "plain": summary["plain"],
                "before": summary.get("before"),
                "speculation_and_prefix_reuse": summary["now"],
                "identical_outputs": sum(x == y for x, y in zip(timed["plain"][1], timed["now"][1], strict=True)),
                "speculation": hasattr(runtime, "draft_tokens"),
            }
        )
        runtime.close()
    doc = {
        "benchmark": "decode_limits",
        "command": "python " + " ".join(sys.argv),
        "conditions": {"cpu": cpu_name(), "threads": 2, "versions": tool_versions(), "commit": git_commit()},
        "bandwidth_gb_s": bw,
        "results": results,
    }
    write_text_atomic(out / "decode_limits.json", json.dumps(doc, indent=2) + "\n")
    md = [
        f"# Decode speed against the memory-bandwidth bound ({doc['conditions']['cpu']}, 2 threads)",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Memory bandwidth (array copy): {bw[1]} GB/s on 1 thread, {bw[2]} GB/s on 2. Bound = bandwidth (2 threads)"
        " / weight bytes read per token.",
        "",
        "| artifact | runtime | weights MB | bound tok/s | decode tok/s | of bound | edit p50 / p95 ms, plain |"
        " p50 / p95, copy-speculation before | p50 / p95, now | now vs plain (mean) | identical outputs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(v: dict | None) -> str:
        return f"{v['p50_ms']:.0f} / {v['p95_ms']:.0f}" if v else "–"

    for r in results:
        fast = r["speculation_and_prefix_reuse"]
        label = "copy-speculation + prefix reuse" if r["speculation"] else "prefix reuse"
        ratio = r["plain"]["mean_ms"] / fast["mean_ms"] if fast.get("mean_ms") else None
        md.append(
            f"| {r['artifact']} | {r['runtime']} | {r['weight_mb']} | {r['bound_tok_s']} | {r['decode_tok_s']} | "
            f"{r['fraction_of_bound']:.0%} | {cell(r['plain'])} | {cell(r['before'])} | {cell(fast)} ({label}) | "
            f"{f'{ratio:.2f}x' if ratio else '–'} | {r['identical_outputs']}/{r['rows']} |"
        )
    md += [
        "",
        f"Edits: {len(rows)} dev rows ({a.rows_per_task} per task's headline set, seeded), one at a time; the modes"
        " take turns task by task (order rotated), in one process. *plain*: no drafts, no prefix reuse. *before*:"
        " copy-speculation with 10 draft tokens and none in the prompt's pass (this repository before"
        " drafts rode in the prompt's pass). *now*: the defaults (llama.cpp: 6 draft tokens, the first ones"
        " verified in the prompt's own pass). *identical outputs*: plain vs now (greedy; differences are"
        " rounding near-ties of batched kernels, see tests).",
        "",
    ]
    write_text_atomic(out / "decode_limits.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    from edgewrite.errors import EdgewriteError

    try:
        main()
    except EdgewriteError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
