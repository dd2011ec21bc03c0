"""Which llama.cpp build edits faster: the same GGUF artifacts, the same dev edits, one process per build,
the builds taking turns (order rotated each round), in one run.

llama-cpp-python is compiled on install (install.sh). The portable flags (AVX2) leave the AVX-512 units
of these machines idle; install.sh now adds AVX-512 (F/BW/VL, VNNI, VBMI, BF16) when the CPU has them.
This benchmark keeps that choice measured: each build is a directory holding a ``llama_cpp`` package
(an unpacked wheel), put first on PYTHONPATH of its child process; ``installed`` is the venv's own.

    pip wheel --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -w /tmp/w  # per CMAKE_ARGS
    python experiments/llama_build.py runs/writing-smollm2-135m-cpu/gguf-q4_k_m \\
        --build avx2=/tmp/avx2/site --build avx512=/tmp/avx512/site

Writes benchmarks/results/llama_build.{json,md}: edit latency p50/p95/mean per build and artifact, the
ratio to the first build, and how many outputs the builds share (greedy; kernels round differently).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.artifacts import git_commit, tool_versions, write_text_atomic  # noqa: E402
from edgewrite.bench import LATENCY_ROWS, cpu_name, latency_sample, percentile  # noqa: E402


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def child(artifact: str, rows: int) -> None:
    """In the build's process: load, warm up, edit the bench's latency rows one at a time."""
    import llama_cpp

    from edgewrite.edit import load_editor
    from edgewrite.evaluate import gather

    editor, _ = load_editor(artifact, device="cpu", threads=2, batch_size=1)
    sets = latency_sample(gather(ROOT.parent / "shared" / "data", None, "dev", None, headline_only=True), rows)
    editor.edit(sets[0].spec.task, [sets[0].rows[0]["source"]])
    latencies, outputs = [], []
    for s in sets:
        for row in s.rows:
            t0 = time.perf_counter()
            (e,) = editor.edit(s.spec.task, [row["source"]])
            latencies.append((time.perf_counter() - t0) * 1000)
            outputs.append(e.output)
    info = llama_cpp.llama_print_system_info().decode()
    print(json.dumps({"latencies": latencies, "outputs": outputs, "system_info": info, "lib": llama_cpp.__file__}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("artifacts", nargs="+")
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR holding a llama_cpp package")
    ap.add_argument("--rows", type=int, default=LATENCY_ROWS)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    if a.rows < 1 or a.rounds < 1:
        _fail("--rows and --rounds must be at least 1")
    builds = {}
    for spec in a.build:
        name, _, where = spec.partition("=")
        if not name or not where or not (where == "installed" or (Path(where) / "llama_cpp").is_dir()):
            _fail(f"--build {spec!r}: want NAME=DIR with DIR/llama_cpp (or NAME=installed)")
        builds[name] = where
    for artifact in a.artifacts:
        if not (Path(artifact) / "manifest.json").is_file():
            _fail(f"{artifact} is not an edgewrite artifact (no manifest.json)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(builds)
    runs: dict[str, dict[str, list[dict]]] = {art: {n: [] for n in names} for art in a.artifacts}
    for rnd in range(a.rounds):
        for art in a.artifacts:
            for name in names[rnd % len(names) :] + names[: rnd % len(names)]:
                env = dict(os.environ)
                if builds[name] != "installed":
                    env["PYTHONPATH"] = os.pathsep.join([builds[name], str(ROOT)])
                cmd = [sys.executable, __file__, "--child", art, "--rows", str(a.rows)]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                    print(f"error: build {name} on {art} failed: {last}", file=sys.stderr)
                    raise SystemExit(1)
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                runs[art][name].append(res)
                print(f"round {rnd + 1} {art} {name}: p50 {percentile(res['latencies'], 0.5):.0f} ms", flush=True)
    results = []
    for art in a.artifacts:
        base = None
        for name in names:
            lat = [x for r in runs[art][name] for x in r["latencies"]]
            row = {
                "artifact": art,
                "build": name,
                "system_info": runs[art][name][0]["system_info"].strip(),
                "edits": len(lat),
                "p50_ms": round(percentile(lat, 0.5), 1),
                "p95_ms": round(percentile(lat, 0.95), 1),
                "mean_ms": round(statistics.mean(lat), 1),
            }
            first = runs[art][name][0]["outputs"]
            if base is None:
                base, base_outputs = row, first
            row["mean_vs_first"] = round(row["mean_ms"] / base["mean_ms"], 3)
            row["p50_vs_first"] = round(row["p50_ms"] / base["p50_ms"], 3)
            row["same_outputs_as_first"] = sum(x == y for x, y in zip(first, base_outputs, strict=True))
            results.append(row)
    doc = {
        "benchmark": "llama_build",
        "command": "python " + " ".join(sys.argv),
        "conditions": {"cpu": cpu_name(), "threads": 2, "versions": tool_versions(), "commit": git_commit()},
        "builds": builds,
        "rounds": a.rounds,
        "results": results,
    }
    write_text_atomic(out / "llama_build.json", json.dumps(doc, indent=2) + "\n")
    md = [
        f"# llama.cpp build: edit latency side by side ({doc['conditions']['cpu']}, 2 threads)",
        "",
        f"Command: `{doc['command']}`",
        "",
        "| artifact | build | CPU features llama.cpp reports | edit p50 / p95 ms | mean ms | mean vs first |"
        " same outputs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        feats = " ".join(p.split("=")[0].strip() for p in r["system_info"].split("|") if p.strip().endswith("= 1"))
        feats = feats.replace("CPU : ", "")
        md.append(
            f"| {r['artifact']} | {r['build']} | {feats} | {r['p50_ms']:.0f} / {r['p95_ms']:.0f} |"
            f" {r['mean_ms']:.0f} | {r['mean_vs_first']:.2f}x | {r['same_outputs_as_first']}/{a.rows} |"
        )
    md += [
        "",
        f"Each build edited the bench's {a.rows} latency rows (dev, every task) one at a time, {a.rounds} rounds,"
        " builds taking turns in separate processes (order rotated each round); copy-speculation and prefix"
        " reuse on (the defaults). *same outputs*: first round, against the first build.",
        "",
    ]
    write_text_atomic(out / "llama_build.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        child(sys.argv[i + 1], int(sys.argv[sys.argv.index("--rows") + 1]))
    else:
        main()
