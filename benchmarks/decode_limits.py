"""How close each runtime decodes to what the memory bus allows, and what copy-speculation and prefix
reuse buy on real edits.

- Bandwidth: a large numpy array copied (read + write) by 1 and by 2 threads.
- Bound: decoding one token reads every weight once, so tok/s <= bandwidth / weight bytes.
- Measured: greedy decode tok/s of each runtime (plain decoding, median of 3 after a warm-up), as a
  fraction of the bound.
- Edits: one-sentence edit latency p50/p95 on a seeded sample of dev rows of every task, with the
  speed-ups off (no drafts, no prefix reuse) and on, in one run, side by side; and how many outputs are
  identical between the two (greedy; differences are rounding near-ties, see tests).

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
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.artifacts import git_commit, read_manifest, tool_versions  # noqa: E402
from edgewrite.bench import _cpu_name, _pct  # noqa: E402


def bandwidth(threads: int, mb: int = 512, repeats: int = 5) -> float:
    """GB/s moved (bytes read + written) copying arrays of ``mb`` MB, one per thread."""
    srcs = [np.ones(mb * 2**20 // 8) for _ in range(threads)]
    dsts = [np.empty_like(s) for s in srcs]
    best = 0.0
    for _ in range(repeats):
        ts = [threading.Thread(target=np.copyto, args=(d, s)) for d, s in zip(dsts, srcs, strict=True)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dt = time.perf_counter() - t0
        best = max(best, 2 * mb * 2**20 * threads / dt / 1e9)
    return best


def weight_bytes(path: Path, manifest: dict) -> int:
    """Bytes of weights read per decoded token: the model file(s) (a tied embedding matrix is read once,
    as the LM head)."""
    names = [n for n in manifest["files"] if n.endswith((".gguf", ".onnx.data", ".safetensors", ".onnx"))]
    return sum(manifest["files"][n]["bytes"] for n in names)


def decode_speed(runtime, prompt: str) -> float:  # noqa: ANN001
    runtime.generate([prompt], 8)
    speeds = []
    for _ in range(3):
        (g,) = runtime.generate([prompt], 128)
        speeds.append((g.new_tokens - 1) / g.decode_s if g.new_tokens > 1 and g.decode_s > 0 else 0.0)
    return statistics.median(speeds)


def edit_latency(runtime, manifest: dict, rows: list[tuple[str, str]], fast: bool) -> tuple[list[float], list[str]]:  # noqa: ANN001
    from edgewrite.edit import ModelEditor

    if hasattr(runtime, "draft_tokens"):
        runtime.draft_tokens = 10 if fast else 0
    runtime.prefix_cache = fast
    editor = ModelEditor(runtime, manifest.get("prompt_style", "chat"))
    editor.edit(rows[0][0], [rows[0][1]])
    latencies, outputs = [], []
    for task, text in rows:
        t0 = time.perf_counter()
        (e,) = editor.edit(task, [text])
        latencies.append((time.perf_counter() - t0) * 1000)
        outputs.append(e.output)
    return latencies, outputs


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
    bw = {1: round(bandwidth(1), 1), 2: round(bandwidth(2), 1)}
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
        bound = bw[2] * 1e9 / nbytes
        tps = decode_speed(runtime, prompt)
        print(f"{artifact}: decode {tps:.1f} tok/s ({tps / bound:.0%} of the bound); {len(rows)} edits", flush=True)
        slow, out_slow = edit_latency(runtime, manifest, rows, fast=False)
        print(f"{artifact}: plain p50 {_pct(slow, 0.5):.0f} ms; the same edits with the speed-ups", flush=True)
        fast, out_fast = edit_latency(runtime, manifest, rows, fast=True)
        print(f"{artifact}: with the speed-ups p50 {_pct(fast, 0.5):.0f} ms", flush=True)
        results.append(
            {
                "artifact": artifact,
                "runtime": runtime.name,
                "weight_mb": round(nbytes / 1e6, 1),
                "bound_tok_s": round(bound, 1),
                "decode_tok_s": round(tps, 1),
                "fraction_of_bound": round(tps / bound, 3),
                "rows": len(rows),
                "plain": {"p50_ms": round(_pct(slow, 0.5), 1), "p95_ms": round(_pct(slow, 0.95), 1)},
                "speculation_and_prefix_reuse": {
                    "p50_ms": round(_pct(fast, 0.5), 1),
                    "p95_ms": round(_pct(fast, 0.95), 1),
                },
                "identical_outputs": sum(x == y for x, y in zip(out_slow, out_fast, strict=True)),
                "speculation": hasattr(runtime, "draft_tokens"),
            }
        )
        runtime.close()
    doc = {
        "benchmark": "decode_limits",
        "command": "python " + " ".join(sys.argv),
        "conditions": {"cpu": _cpu_name(), "threads": 2, "versions": tool_versions(), "commit": git_commit()},
        "bandwidth_gb_s": bw,
        "results": results,
    }
    _write(out / "decode_limits.json", json.dumps(doc, indent=2) + "\n")
    md = [
        f"# Decode speed against the memory-bandwidth bound ({doc['conditions']['cpu']}, 2 threads)",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Memory bandwidth (array copy): {bw[1]} GB/s on 1 thread, {bw[2]} GB/s on 2. Bound = bandwidth (2 threads)"
        " / weight bytes read per token.",
        "",
        "| artifact | runtime | weights MB | bound tok/s | decode tok/s | of bound | edit p50 / p95 ms, plain |"
        " edit p50 / p95 ms, copy-speculation + prefix reuse | identical outputs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        fast = r["speculation_and_prefix_reuse"]
        label = "copy-speculation + prefix reuse" if r["speculation"] else "prefix reuse"
        md.append(
            f"| {r['artifact']} | {r['runtime']} | {r['weight_mb']} | {r['bound_tok_s']} | {r['decode_tok_s']} | "
            f"{r['fraction_of_bound']:.0%} | {r['plain']['p50_ms']:.0f} / {r['plain']['p95_ms']:.0f} | "
            f"{fast['p50_ms']:.0f} / {fast['p95_ms']:.0f} ({label}) | {r['identical_outputs']}/{r['rows']} |"
        )
    md += ["", f"Edits: {len(rows)} dev rows ({a.rows_per_task} per task's headline set, seeded), one at a time.", ""]
    _write(out / "decode_limits.md", "\n".join(md))
    print("\n".join(md))


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    from edgewrite.errors import EdgewriteError

    try:
        main()
    except EdgewriteError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
