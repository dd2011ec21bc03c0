"""Assist throughput and server latency with one artifact on 2 CPU threads.

1. `edgewrite assist` on a 2,000-word document of real learner English (JFLEG dev sources, which
   carry real errors), in its own process: wall time, words/s, peak RSS.
2. `edgewrite serve` on loopback: 50 concurrent one-sentence /v1/edit requests; latency p50/p95,
   errors, and the server's peak RSS.

    python benchmarks/assist_serve.py runs/quickstart/gguf-q4_k_m

Writes benchmarks/results/assist_serve.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from edgewrite.artifacts import git_commit, tool_versions
from edgewrite.assist import word_diff


def document(words: int) -> str:
    rows = [json.loads(x) for x in Path("../shared/data/jfleg/dev.jsonl").read_text().splitlines()]
    paras, para, count = [], [], 0
    for r in rows:
        para.append(r["source"])
        count += len(r["source"].split())
        if len(para) == 5:
            paras.append(" ".join(para))
            para = []
        if count >= words:
            break
    if para:
        paras.append(" ".join(para))
    return "\n\n".join(paras) + "\n"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact")
    ap.add_argument("--words", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    exe = [sys.executable, "-m", "edgewrite.cli"]
    doc = document(a.words)
    n_words = len(doc.split())
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "doc.md"
        src.write_text(doc)
        t0 = time.perf_counter()
        done = subprocess.run(
            [*exe, "assist", str(src), "-m", a.artifact, "--out", str(Path(tmp) / "out.md"), "-q"],
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(done.stderr)
        assist_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        edited = (Path(tmp) / "out.md").read_text()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*exe, "serve", "-m", a.artifact, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    sentences = [s for s in doc.replace("\n", " ").split(". ") if len(s.split()) > 3][: a.requests]
    latencies: list[float] = []
    errors: list[str] = []

    def one(text: str) -> None:
        body = json.dumps({"text": text.strip() + ".", "task": "grammar"}).encode()
        req = urllib.request.Request(base + "/v1/edit", data=body, headers={"Content-Type": "application/json"})
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                json.loads(resp.read())
            latencies.append((time.perf_counter() - t) * 1000)
        except Exception as e:  # noqa: BLE001 - every failure counts as an error
            errors.append(repr(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(s,)) for s in sentences]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    serve_wall = time.perf_counter() - t0
    status = Path(f"/proc/{server.pid}/status").read_text()
    server_rss = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024
    server.terminate()
    server.wait()
    result = {
        "benchmark": "assist_serve",
        "command": "python " + " ".join(sys.argv),
        "artifact": a.artifact,
        "conditions": {"threads": 2, "versions": tool_versions(), "commit": git_commit()},
        "assist": {
            "words": n_words,
            "seconds": round(wall, 2),
            "words_per_second": round(n_words / wall, 1),
            "peak_rss_mb": round(assist_rss, 1),
            "words_changed": sum(len(t.split()) for op, t in word_diff(doc, edited) if op == "-"),
        },
        "serve": {
            "requests": len(sentences),
            "concurrent": len(sentences),
            "errors": len(errors),
            "latency_ms_p50": round(pct(latencies, 0.5), 1) if latencies else None,
            "latency_ms_p95": round(pct(latencies, 0.95), 1) if latencies else None,
            "seconds": round(serve_wall, 2),
            "peak_rss_mb": round(server_rss, 1),
            "error_samples": errors[:3],
        },
    }
    out = Path(a.out)
    (out / "assist_serve.json").write_text(json.dumps(result, indent=2) + "\n")
    s_, v = result["assist"], result["serve"]
    md = [
        f"# Assist and serve ({Path(a.artifact).name}, 2 CPU threads)",
        "",
        f"Command: `{result['command']}`",
        "",
        "| measure | value |",
        "|---|---|",
        f"| assist: {s_['words']}-word document | {s_['seconds']} s, **{s_['words_per_second']} words/s** |",
        f"| assist: peak RSS | {s_['peak_rss_mb']} MB |",
        f"| serve: {v['requests']} concurrent /v1/edit requests | p50 {v['latency_ms_p50']} ms, "
        f"p95 {v['latency_ms_p95']} ms, **{v['errors']} errors** |",
        f"| serve: peak RSS | {v['peak_rss_mb']} MB |",
        "",
    ]
    (out / "assist_serve.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
