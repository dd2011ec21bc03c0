"""Quantize a merged model into every format, then compare each runtime through edgewrite with
the same library called directly on the same file (same prompt, same number of greedy tokens).

Each quantization runs as `edgewrite quantize` in its own process (wall time, peak RSS of the process
tree). Decode speed: after a warm-up of each, the edgewrite path and the library-direct path run
alternately, ROUNDS times each, plain greedy decoding on both sides (edgewrite's copy-speculation off);
the median and the range show whether a gap is overhead or run-to-run noise. 2 threads.

    mkdir -p runs/writing-cpu-qr && cp -r runs/writing-smollm2-135m-cpu/merged runs/writing-cpu-qr/
    python benchmarks/quantize_runtimes.py --model runs/writing-cpu-qr/merged

(the exports are written next to the model with --force: a copy keeps the benched artifacts as they are)

Writes benchmarks/results/quantize_runtimes.{json,md}.
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

from edgewrite.artifacts import git_commit, tool_versions
from edgewrite.bench import cpu_name
from edgewrite.measure import interleaved

EXPORTS = [("gguf", 8, "gguf-q8_0"), ("gguf", 4, "gguf-q4_k_m"), ("onnx", 4, "onnx-int4"), ("gptq", 4, "gptq-4bit-g64")]
PROMPT_TEXT = (
    "Yesterday me and my friend goes to the new museum in the city center, and we was very surprised because "
    "the paintings which was there is more beautiful that we expected, so we decide to come back next week."
)


def quantize(model: str, fmt: str, bits: int) -> dict:
    """Run `edgewrite quantize` and sample the RSS of its whole process tree (the converter and the
    quantizer run as child processes) every 50 ms."""
    import tempfile

    import psutil

    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: GPT-QModel's logging cannot block the child
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgewrite.cli", "quantize", model, "-f", fmt, "--bits", str(bits), "--force"],
        stdout=log,
        stderr=log,
        text=True,
    )
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        log.seek(0)
        sys.exit(log.read()[-2000:])
    log.close()
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak / 2**20, 1)}


ROUNDS = 5


def direct(fmt: str, path: Path, prompt: str, n: int):  # noqa: ANN201
    """The library alone: one measurement of exactly n greedy tokens from the same prompt text."""
    if fmt == "gguf":
        import llama_cpp

        gguf = next(path.glob("*.gguf"))
        llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=2048, n_threads=2, verbose=False)
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)

        def run():
            t0 = time.perf_counter()
            first = None
            for i, _tok in enumerate(llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True)):
                if i == 0:
                    first = time.perf_counter()
                if i + 1 == n:
                    break
            return n, first - t0, time.perf_counter() - first

        return run
    if fmt == "onnx":
        import onnxruntime  # noqa: F401
        import onnxruntime_genai as og

        config = og.Config(str(path))
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": 2}}}}))
        model = og.Model(config)
        tokens = og.Tokenizer(model).encode(prompt)

        def run():
            params = og.GeneratorParams(model)
            params.set_search_options(do_sample=False, max_length=len(tokens) + n)
            t0 = time.perf_counter()
            gen = og.Generator(model, params)
            gen.append_tokens(tokens)
            first = None
            for i in range(n):
                gen.generate_next_token()
                gen.get_next_tokens()
                if i == 0:
                    first = time.perf_counter()
            return n, first - t0, time.perf_counter() - first

        return run
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(path)
    if fmt == "gptq":
        from edgewrite.quantize.gptq import import_gptqmodel

        model = import_gptqmodel().GPTQModel.load(str(path), device="cpu").model
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    enc = tok([prompt], return_tensors="pt", add_special_tokens=False)

    class First(LogitsProcessor):
        at = None

        def __call__(self, ids, scores):
            if self.at is None:
                self.at = time.perf_counter()
            return scores

    def run():
        first = First()
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                **enc,
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                logits_processor=LogitsProcessorList([first]),
                pad_token_id=tok.pad_token_id,
            )
        return n, first.at - t0, time.perf_counter() - first.at

    return run


def through_edgewrite(path: Path):  # noqa: ANN201
    """edgewrite's runtime for the artifact, plain greedy decoding: a one-measurement closure, the token
    count it produces and the prompt."""
    from edgewrite.runtimes import load_runtime
    from edgewrite.tasks import TASKS, build_prompt

    runtime, manifest = load_runtime(path, threads=2, batch_size=1)
    for switch in ("prompt_lookup", "draft_tokens"):  # plain decoding, as the library does it
        if hasattr(runtime, switch):
            setattr(runtime, switch, 0)
    prompt = build_prompt(
        runtime.tokenizer, TASKS["grammar"].default_instruction, PROMPT_TEXT, manifest["prompt_style"]
    )
    (g,) = runtime.generate([prompt], max_new_tokens=96)

    def run():  # noqa: ANN202
        (g,) = runtime.generate([prompt], max_new_tokens=96)
        return g.new_tokens, g.ttft_s, g.decode_s

    return run, g.new_tokens, prompt, runtime


def side_by_side(ours, lib) -> dict:  # noqa: ANN001
    """Both paths warmed up, then measured taking turns ROUNDS times: median and range of each."""
    timed = interleaved({"ours": lambda _: ours(), "lib": lambda _: lib()}, list(range(ROUNDS)))
    out = {}
    for k, runs in timed.items():
        rates = [(n - 1) / decode for n, _, decode in (t.result for t in runs)]
        ttfts = [ttft * 1000 for _, ttft, _ in (t.result for t in runs)]
        out[k] = {
            "tok_s": round(statistics.median(rates), 1),
            "tok_s_range": [round(min(rates), 1), round(max(rates), 1)],
            "ttft_ms": round(statistics.median(ttfts), 1),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="runs/quickstart/merged")
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    model = Path(a.model)
    rows = []
    targets = [("hf", None, model)] + [(f, b, model.parent / d) for f, b, d in EXPORTS]
    for fmt, bits, path in targets:
        q = quantize(str(model), fmt, bits) if bits else {"seconds": None, "peak_rss_mb": None}
        manifest = json.loads((path / "manifest.json").read_text())
        size = sum(f["bytes"] for f in manifest["files"].values())
        ours, n, prompt, runtime = through_edgewrite(path)
        m = side_by_side(ours, direct(fmt, path, prompt, n))
        runtime.close()
        label = {"hf": "HF fp32 (merged)"}.get(fmt) or f"{fmt} {path.name.split('-', 1)[1]}"
        rows.append(
            {
                "artifact": label,
                "path": str(path),
                "size_mb": round(size / 1e6, 1),
                "quantize": q,
                "tokens": n,
                "edgewrite_tok_s": m["ours"]["tok_s"],
                "edgewrite_tok_s_range": m["ours"]["tok_s_range"],
                "library_tok_s": m["lib"]["tok_s"],
                "library_tok_s_range": m["lib"]["tok_s_range"],
                "overhead_pct": round((m["lib"]["tok_s"] - m["ours"]["tok_s"]) / m["lib"]["tok_s"] * 100, 1),
                "edgewrite_ttft_ms": m["ours"]["ttft_ms"],
                "library_ttft_ms": m["lib"]["ttft_ms"],
                "fallback_tensors": manifest.get("details", {}).get("fallback_tensors"),
            }
        )
        print(rows[-1], flush=True)
    result = {
        "benchmark": "quantize_runtimes",
        "command": "python " + " ".join(sys.argv),
        "conditions": {"cpu": cpu_name(), "threads": 2, "versions": tool_versions(), "commit": git_commit()},
        "rows": rows,
    }
    out = Path(a.out)
    (out / "quantize_runtimes.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        f"# Quantization and runtimes ({model}, {cpu_name()}, 2 threads)",
        "",
        f"Command: `{result['command']}`",
        "",
        f"| artifact | MB | quantize s | quantize peak RSS MB | decode tok/s, edgewrite (range of {ROUNDS}) | "
        "decode tok/s, library direct (range) | overhead | TTFT ms (edgewrite / direct) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        q = r["quantize"]
        md.append(
            f"| {r['artifact']} | {r['size_mb']} | {q['seconds'] or '–'} | {q['peak_rss_mb'] or '–'} | "
            f"{r['edgewrite_tok_s']} ({r['edgewrite_tok_s_range'][0]}-{r['edgewrite_tok_s_range'][1]}) | "
            f"{r['library_tok_s']} ({r['library_tok_s_range'][0]}-{r['library_tok_s_range'][1]}) | "
            f"{r['overhead_pct']}% | "
            f"{r['edgewrite_ttft_ms']} / {r['library_ttft_ms']} |"
        )
    (out / "quantize_runtimes.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
