"""Assist and serve with one artifact on 2 CPU threads, each measured in processes of their own.

1. Cold start: process start -> the first edited sentence on stdout (`edgewrite assist -` on one
   sentence), and whether torch or transformers was imported on the way.
2. `edgewrite assist` on a 2,000-word document of real learner English (JFLEG dev sources): wall time,
   words/s, peak RSS.
3. `edgewrite serve` on loopback: N concurrent one-sentence /v1/edit requests, served one at a time
   (--max-batch 1, how the server worked before) and decoded together (--max-batch 16 and 64: requests
   the engine takes per pass; llama.cpp decodes up to 16 of them at once, refilling a finished one's
   slot), side by side: latency p50/p95, errors, the server's peak RSS.
4. The compute bound on this machine: the runtime's rate of token evaluations (a 256-token prompt; 16
   sequences decoding together), and the evaluations the N requests need (their prompts beyond the
   shared prefix, and the tokens they generated): no server can finish them all sooner.

    python benchmarks/assist_serve.py runs/writing-smollm2-135m-cpu/gguf-iq4_nl-imat

Writes benchmarks/results/assist_serve.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.artifacts import git_commit, tool_versions  # noqa: E402
from edgewrite.bench import cpu_name, percentile  # noqa: E402

EXE = [sys.executable, "-m", "edgewrite.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "2"}
PROBE = (
    "import runpy, sys\n"
    "sys.argv, code = ['edgewrite', *sys.argv[1:]], 0\n"
    "try:\n    runpy.run_module('edgewrite.cli', run_name='__main__')\n"
    "except SystemExit as e:\n    code = e.code\n"
    "loaded = ('torch' in sys.modules, 'transformers' in sys.modules)\n"
    "from edgewrite.bench import peak_rss_mb\n"
    "print('PROBE', *loaded, peak_rss_mb(), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def document(words: int) -> str:
    rows = [json.loads(x) for x in (ROOT.parent / "shared/data/jfleg/dev.jsonl").read_text().splitlines()]
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


def probe(args: list[str], stdin: str | None = None) -> tuple[float, dict, str]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], input=stdin, capture_output=True, text=True, env=ENV, cwd=ROOT
    )
    wall = time.perf_counter() - t0
    line = next((x for x in done.stderr.splitlines() if x.startswith("PROBE")), None)
    if done.returncode != 0 or line is None:
        sys.exit(done.stderr[-3000:])
    _, torch_loaded, tf_loaded, rss = line.split()
    return (
        wall,
        {"torch": torch_loaded == "True", "transformers": tf_loaded == "True", "peak_rss_mb": float(rss)},
        done.stdout,
    )


def serve_round(artifact: str, sentences: list[str], max_batch: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*EXE, "serve", "-m", artifact, "--port", str(port), "--max-batch", str(max_batch)],
        env=ENV,
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
    latencies: list[float] = []
    errors: list[str] = []
    completion: list[int] = []

    def one(text: str) -> None:
        body = json.dumps({"text": text, "task": "grammar"}).encode()
        req = urllib.request.Request(base + "/v1/edit", data=body, headers={"Content-Type": "application/json"})
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                completion.append(json.loads(resp.read())["usage"]["completion_tokens"])
            latencies.append((time.perf_counter() - t) * 1000)
        except Exception as e:  # noqa: BLE001 - every failure counts as an error
            errors.append(repr(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(s,)) for s in sentences]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    status = Path(f"/proc/{server.pid}/status").read_text()
    rss = next(int(x.split()[1]) / 1024 for x in status.splitlines() if x.startswith("VmHWM"))
    server.terminate()
    server.wait()
    return {
        "max_batch": max_batch,
        "requests": len(sentences),
        "errors": len(errors),
        "p50_ms": round(percentile(latencies, 0.5) or 0, 1),
        "p95_ms": round(percentile(latencies, 0.95) or 0, 1),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(rss, 1),
        "completion_tokens": sum(completion),
    }


def compute_bound(artifact: str, sentences: list[str], generated: int) -> dict:
    """Token evaluations per second the runtime reaches on this machine, and what the requests need."""
    from edgewrite.runtimes import load_runtime
    from edgewrite.tasks import TASKS, build_prompt

    rt, manifest = load_runtime(artifact, threads=2)
    if not hasattr(rt, "_decode"):
        rt.close()
        return {}
    lc, mem = rt.llama_cpp, rt.ctx.memory
    prompts = [
        rt.tokenize(build_prompt(rt.tokenizer, TASKS["grammar"].default_instruction, s, manifest["prompt_style"]))
        for s in sentences
    ]
    from edgewrite.runtimes.llamacpp import shared_prefix

    common = shared_prefix(prompts)
    own_prompt = sum(len(p) - common for p in prompts)

    def timed(items: list) -> float:
        t = time.perf_counter()
        rt._decode(items)
        return time.perf_counter() - t

    tokens = [t for p in prompts for t in p][:256]
    prompt_rate = []
    for _ in range(3):
        lc.llama_memory_clear(mem, True)
        prompt_rate.append(len(tokens) / timed([(t, i, 0, False) for i, t in enumerate(tokens)]))
    lc.llama_memory_clear(mem, True)
    width = min(16, rt.parallel)
    timed([(t, i, s, False) for s in range(width) for i, t in enumerate(prompts[s % len(prompts)])])
    steps = [
        width / timed([(tokens[k], len(prompts[s % len(prompts)]) + k, s, True) for s in range(width)])
        for k in range(20)
    ]
    rt.close()
    pp, dec = max(prompt_rate), sorted(steps)[len(steps) // 2]
    return {
        "prompt_tokens_per_s": round(pp, 1),
        "batched_decode_tokens_per_s": round(dec, 1),
        "batched_width": width,
        "shared_prefix_tokens": common,
        "own_prompt_tokens": own_prompt,
        "generated_tokens": generated,
        "all_done_bound_s": round(common / pp + own_prompt / pp + generated / dec, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact")
    ap.add_argument("--words", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    doc = document(a.words)
    cold_wall, cold, first = probe(["assist", "-", "-m", a.artifact, "-q"], stdin="She go to school every days.\n")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "doc.md"
        src.write_text(doc)
        wall, info, _ = probe(["assist", str(src), "-m", a.artifact, "--out", str(Path(tmp) / "out.md"), "-q"])
    sentences = [s.strip() + "." for s in doc.replace("\n", " ").split(". ") if len(s.split()) > 3][: a.requests]
    rounds = [serve_round(a.artifact, sentences, mb) for mb in (1, 16, 64)]
    bound = compute_bound(a.artifact, sentences, rounds[-1]["completion_tokens"])
    result = {
        "benchmark": "assist_serve",
        "command": "python " + " ".join(sys.argv),
        "artifact": a.artifact,
        "conditions": {"cpu": cpu_name(), "threads": 2, "versions": tool_versions(), "commit": git_commit()},
        "cold_start": {"seconds": round(cold_wall, 2), "output": first.strip(), **cold},
        "assist": {
            "words": len(doc.split()),
            "seconds": round(wall, 2),
            "words_per_second": round(len(doc.split()) / wall, 1),
            **info,
        },
        "serve": rounds,
        "compute_bound": bound,
    }
    out = Path(a.out)
    (out / "assist_serve.json").write_text(json.dumps(result, indent=2) + "\n")
    one_at_a_time = rounds[0]
    together = min(rounds[1:], key=lambda r: r["p50_ms"])
    modules = f"torch: {cold['torch']}, transformers: {cold['transformers']}"
    speed = f"{wall:.1f} s, **{result['assist']['words_per_second']} words/s**"
    names = {
        1: "one request at a time (--max-batch 1)",
        16: "decoded together, 16 requests per pass (--max-batch 16)",
        64: "decoded together, 64 requests per pass (--max-batch 64)",
    }
    md = [
        f"# Assist and serve ({a.artifact}, {result['conditions']['cpu']}, 2 threads)",
        "",
        f"Command: `{result['command']}`",
        "",
        "| measure | value |",
        "|---|---|",
        f"| cold start: process start to the first edited sentence | {cold_wall:.2f} s |",
        f"| modules imported by assist on this artifact | {modules} |",
        f"| assist: {result['assist']['words']}-word document | {speed} |",
        f"| assist: peak RSS | **{info['peak_rss_mb']:.0f} MB** |",
        "",
        f"{a.requests} concurrent one-sentence /v1/edit requests on loopback:",
        "",
        "| server | p50 ms | p95 ms | errors | all done in s | peak RSS MB |",
        "|---|---|---|---|---|---|",
        *(
            f"| {names[r['max_batch']]} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['errors']} | "
            f"{r['wall_s']} | {r['peak_rss_mb']:.0f} |"
            for r in rounds
        ),
        "",
        f"Decoding together: p50 {one_at_a_time['p50_ms'] / max(together['p50_ms'], 1e-9):.1f}x lower "
        f"(best: --max-batch {together['max_batch']}).",
        "",
    ]
    if bound:
        md += [
            "The compute bound on this machine (llama.cpp, 2 threads): "
            f"{bound['prompt_tokens_per_s']:.0f} prompt tokens/s (256 at once), "
            f"{bound['batched_decode_tokens_per_s']:.0f} tokens/s with {bound['batched_width']} sequences decoding "
            f"together. The {a.requests} requests need {bound['own_prompt_tokens']} prompt tokens of their own (plus "
            f"a {bound['shared_prefix_tokens']}-token shared prefix) and generated {bound['generated_tokens']}: "
            f"at least **{bound['all_done_bound_s']:.1f} s** of compute before the last one can finish, whatever "
            "the scheduling.",
            "",
        ]
    (out / "assist_serve.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
