"""How time, memory and disk grow with model size: LLaMA-architecture checkpoints at real shapes
(SmolLM2-135M, SmolLM2-360M, TinyLlama-1.1B, LLaMA-7B) with seeded random bf16 weights, each with a
random r16 LoRA adapter on every projection, taken through `edgewrite merge` -> `edgewrite quantize
--bits 4` (GGUF Q4_K_M) -> `edgewrite generate` (8 tokens), plus ONNX int4 and GPTQ where they fit in this
benchmark's time, and LoRA training steps per second at the three small sizes.

Random weights measure cost, not quality: no output here says anything about what a model writes.

    python benchmarks/scale.py                       # all four sizes, ~25 min on 2 cores, ~45 GB of disk at the 7B peak
    python benchmarks/scale.py --sizes 135m,360m     # a quick look

Every stage runs as its own process (the CLI a user would run); its peak RSS is the kernel's high-water
mark of that process and everything it waited for (os.wait4), its disk the size of what it wrote. The
checkpoints are written shard by shard (2 GB shards, never the whole model in memory), all shapes with the
embedded model's tokenizer (vocabulary 49,152: the 1.1B and 7B rows have 17,152 more embedding rows than
the originals, which is counted in their parameter figure). Work goes under --work (deleted per size
unless --keep); results to benchmarks/results/scale/{scale.json,scale.md,scale.svg}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.artifacts import git_commit, tool_versions, write_manifest, write_text_atomic  # noqa: E402
from edgewrite.bench import cpu_name  # noqa: E402
from edgewrite.memory import KNOWN_SHAPES, Shape  # noqa: E402

VOCAB = 49152
# name: (shape it copies, the hub id whose config gives the shape in edgewrite.memory.KNOWN_SHAPES); every
# size gets the embedded tokenizer's vocabulary
_FROM = {
    "135m": ("SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    "360m": ("SmolLM2-360M", "HuggingFaceTB/SmolLM2-360M-Instruct"),
    "1b": ("TinyLlama-1.1B", "TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
    "7b": ("LLaMA-7B", "huggyllama/llama-7b"),
}
SHAPES = {
    size: (label, *dataclasses.astuple(dataclasses.replace(Shape(*KNOWN_SHAPES[hub]), vocab=VOCAB))[1:7])
    for size, (label, hub) in _FROM.items()
}  # name: (label, hidden, intermediate, layers, heads, kv heads, tied)
SHARD_BYTES = 2 * 2**30
LORA_R, LORA_ALPHA = 16, 32
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ONNX_SIZES = ("135m", "360m", "1b")
GPTQ_SIZES = ("135m",)
TUNE_SIZES = ("135m", "360m", "1b")
EW = str(Path(sys.executable).with_name("edgewrite"))


def _shapes(size: str) -> list[tuple[str, tuple[int, ...]]]:
    _, h, inter, layers, heads, kv, tied = SHAPES[size]
    hd = h // heads
    out = [("model.embed_tokens.weight", (VOCAB, h))]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (h,)),
            (p + "self_attn.q_proj.weight", (heads * hd, h)),
            (p + "self_attn.k_proj.weight", (kv * hd, h)),
            (p + "self_attn.v_proj.weight", (kv * hd, h)),
            (p + "self_attn.o_proj.weight", (h, heads * hd)),
            (p + "post_attention_layernorm.weight", (h,)),
            (p + "mlp.gate_proj.weight", (inter, h)),
            (p + "mlp.up_proj.weight", (inter, h)),
            (p + "mlp.down_proj.weight", (h, inter)),
        ]
    out.append(("model.norm.weight", (h,)))
    if not tied:
        out.append(("lm_head.weight", (VOCAB, h)))
    return out


def params(size: str) -> int:
    return Shape(VOCAB, *SHAPES[size][1:]).params


def make_checkpoint(size: str, out: Path) -> None:
    """The base (bf16 safetensors in shards, config, tokenizer, manifest) and an r16 LoRA adapter, written
    tensor by tensor: at most one shard in memory."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig

    from edgewrite.models import resolve_model

    _, h, inter, layers, heads, kv, tied = SHAPES[size]
    base, adapter = out / "base", out / "adapter"
    base.mkdir(parents=True)
    adapter.mkdir()
    gen = torch.Generator().manual_seed(0)
    shards: list[dict[str, torch.Tensor]] = [{}]
    filled = 0
    weight_map: dict[str, str] = {}
    names = []

    def flush(last: bool) -> None:
        nonlocal filled
        name = f"model-{len(names) + 1:05d}.safetensors"
        save_file(shards[-1], str(base / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shards[-1], name))
        names.append(name)
        shards[-1] = {}
        filled = 0

    for name, shape in _shapes(size):
        if name.endswith("norm.weight"):
            t = torch.ones(shape, dtype=torch.bfloat16)
        else:
            t = (torch.randn(shape, generator=gen, dtype=torch.float32) * 0.02).to(torch.bfloat16)
        nbytes = t.numel() * 2
        if filled and filled + nbytes > SHARD_BYTES:
            flush(False)
        shards[-1][name] = t
        filled += nbytes
    flush(True)
    total = len(names)
    for i, name in enumerate(names):  # HF's naming: model-00001-of-0000N.safetensors
        final = f"model-{i + 1:05d}-of-{total:05d}.safetensors"
        (base / name).rename(base / final)
        for k, v in weight_map.items():
            if v == name:
                weight_map[k] = final
    size_bytes = sum((base / f).stat().st_size for f in set(weight_map.values()))
    (base / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": size_bytes}, "weight_map": weight_map}, indent=1)
    )
    tok = AutoTokenizer.from_pretrained(resolve_model("default").path)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=h,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=tied,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        torch_dtype="bfloat16",
        architectures=["LlamaForCausalLM"],
    )
    config.save_pretrained(base)
    GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).save_pretrained(base)
    tok.save_pretrained(base)
    write_manifest(
        base,
        "base",
        fingerprint=f"scale-{size}",
        format="safetensors",
        dtype="bfloat16",
        stop_token="<|im_end|>",
        prompt_style="chat",
    )
    # the adapter: A small random, B small random (non-zero, so the merge changes every target weight)
    lora: dict[str, torch.Tensor] = {}
    for name, shape in _shapes(size):
        module = name.rsplit(".", 2)[-2]
        if module in TARGETS:
            prefix = "base_model.model." + name.removesuffix(".weight")
            lora[prefix + ".lora_A.weight"] = torch.randn((LORA_R, shape[1]), generator=gen) * 0.01
            lora[prefix + ".lora_B.weight"] = torch.randn((shape[0], LORA_R), generator=gen) * 0.01
    save_file(lora, str(adapter / "adapter_model.safetensors"), metadata={"format": "pt"})
    (adapter / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "base_model_name_or_path": str(base),
                "r": LORA_R,
                "lora_alpha": LORA_ALPHA,
                "lora_dropout": 0.0,
                "target_modules": list(TARGETS),
                "bias": "none",
                "fan_in_fan_out": False,
                "use_dora": False,
            },
            indent=1,
        )
    )
    write_manifest(
        adapter,
        "adapter",
        fingerprint=f"scale-{size}-lora",
        base_model={"ref": str(base)},
        stop_token="<|im_end|>",
        prompt_style="chat",
    )


def tune_steps(size: str, base: Path, steps: int) -> dict:
    """LoRA training steps on CPU with the recipes' LoRA settings (r16 on every projection, AdamW, fp32
    master weights as `edgewrite tune` loads them on CPU): batch 4 x 128 tokens, one untimed step first."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(
        model, LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, target_modules=list(TARGETS), lora_dropout=0.0)
    )
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = torch.randint(0, VOCAB, (4, 128))

    def step() -> None:
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    s = (time.perf_counter() - t0) / steps
    return {"s_per_step": round(s, 2), "steps_per_s": round(1 / s, 4), "tokens_per_s": round(4 * 128 / s, 1)}


def run_stage(name: str, cmd: list[str], out: Path | None, log: Path) -> dict:
    """One stage as its own process: wall time, peak RSS of it and what it waited for, disk it wrote."""
    t0 = time.perf_counter()
    with open(log, "ab") as f:
        f.write(f"\n$ {' '.join(cmd)}\n".encode())
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out and out.exists() else None
    result = {
        "stage": name,
        "ok": proc.returncode == 0,
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "disk_mb": round(disk / 2**20, 1) if disk is not None else None,
    }
    print(
        f"  {name}: {'ok' if result['ok'] else 'FAILED'} in {wall:.0f} s, peak RSS {result['peak_rss_mb']:.0f} MB"
        + (f", {result['disk_mb']:.0f} MB on disk" if disk is not None else ""),
        flush=True,
    )
    if not result["ok"]:
        result["error"] = log.read_text(errors="replace").strip().splitlines()[-1][-300:]
    return result


def measure(size: str, work: Path, keep: bool, tune: int) -> dict:
    folder = work / size
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    log = folder.parent / f"{size}.log"
    log.write_text("")
    py = sys.executable
    me = str(Path(__file__).resolve())
    print(f"{size} ({SHAPES[size][0]} shape, {params(size) / 1e9:.2f} B parameters)", flush=True)
    stages = [run_stage("make checkpoint", [py, me, "--make", size, str(folder)], folder, log)]
    base, adapter, merged, gguf = folder / "base", folder / "adapter", folder / "merged", folder / "gguf-q4_k_m"
    stages.append(run_stage("merge", [EW, "merge", str(adapter), "--out", str(merged)], merged, log))
    stages.append(
        run_stage("quantize gguf Q4_K_M", [EW, "quantize", str(merged), "--bits", "4", "--out", str(gguf)], gguf, log)
    )
    stages.append(
        run_stage(
            "generate 8 tokens (gguf)",
            [EW, "generate", "She go to school every days.", "-m", str(gguf), "--max-new-tokens", "8"],
            None,
            log,
        )
    )
    skipped = {}
    if size in ONNX_SIZES:
        onnx = folder / "onnx-int4"
        stages.append(
            run_stage(
                "quantize onnx int4",
                [EW, "quantize", str(merged), "-f", "onnx", "--bits", "4", "--out", str(onnx)],
                onnx,
                log,
            )
        )
        shutil.rmtree(onnx, ignore_errors=True)
    else:
        skipped["quantize onnx int4"] = (
            "onnxruntime-genai's builder peaked at 7.3 bytes a parameter at 1B (8.4 GB), about 47 GiB here: "
            "quantize's pre-flight would refuse it on a 24 GB machine"
        )
    if size in GPTQ_SIZES:
        gptq = folder / "gptq-4bit"
        stages.append(
            run_stage(
                "quantize gptq 4-bit",
                [EW, "quantize", str(merged), "-f", "gptq", "--bits", "4", "--samples", "32", "--out", str(gptq)],
                gptq,
                log,
            )
        )
        shutil.rmtree(gptq, ignore_errors=True)
    else:
        skipped["quantize gptq 4-bit"] = (
            "GPTQ on CPU quantizes layer by layer in torch (87 s at 135M with 32 calibration rows, growing with "
            "size); left out of this benchmark's time, it is a CUDA job"
        )
    tuned = None
    if tune and size in TUNE_SIZES:
        stage = run_stage(
            f"LoRA tune {tune} steps", [py, me, "--tune", size, str(base), "--steps", str(tune)], None, log
        )
        stages.append(stage)
        text = log.read_text().splitlines()
        found = [json.loads(x.removeprefix("TUNE ")) for x in text if x.startswith("TUNE ")]
        tuned = {**found[-1], "peak_rss_mb": stage["peak_rss_mb"]} if found and stage["ok"] else None
    elif tune:
        skipped["LoRA tune"] = (
            "a 7B LoRA tune in fp32 on CPU holds ~28 GB of weights: tune --dry-run shows the plan; a GPU job"
        )
    if not keep:
        shutil.rmtree(folder)
    return {
        "size": size,
        "shape_of": SHAPES[size][0],
        "params": params(size),
        "config": dict(
            zip(("hidden", "intermediate", "layers", "heads", "kv_heads", "tied"), SHAPES[size][1:], strict=True)
        ),
        "stages": stages,
        "skipped": skipped,
        "tune": tuned,
    }


def _cell(s: dict | None, disk: bool = True) -> str:
    if s is None:
        return "not run"
    if not s["ok"]:
        return "failed"
    text = f"{s['wall_s']:.0f} s, {s['peak_rss_mb'] / 1024:.1f} GB RSS"
    return text + (f", {s['disk_mb'] / 1024:.2f} GB" if disk and s.get("disk_mb") is not None else "")


def render(doc: dict) -> str:
    sizes = doc["results"]
    stages = [
        ("make checkpoint", "checkpoint (bf16, written shard by shard)"),
        ("merge", "merge (bf16 out)"),
        ("quantize gguf Q4_K_M", "GGUF Q4_K_M"),
        ("generate 8 tokens (gguf)", "load + 8 tokens"),
        ("quantize onnx int4", "ONNX int4"),
        ("quantize gptq 4-bit", "GPTQ 4-bit"),
    ]
    lines = [
        f"# Cost by model size ({doc['cpu']}, {os.cpu_count()} cores, {doc['memory_gb']} GB)",
        "",
        "| size (shape of) | parameters | " + " | ".join(label for _, label in stages) + " | LoRA tune (CPU) |",
        "|---" * (len(stages) + 3) + "|",
    ]
    for r in sizes:
        by = {s["stage"]: s for s in r["stages"]}
        t = r.get("tune")
        tune = f"{t['s_per_step']:.1f} s/step, {t['peak_rss_mb'] / 1024:.1f} GB RSS" if t else "not run"
        cells = [_cell(by.get(name), disk=name != "generate 8 tokens (gguf)") for name, _ in stages]
        lines.append(
            f"| {r['size']} ({r['shape_of']}) | {r['params'] / 1e9:.2f} B | " + " | ".join(cells) + f" | {tune} |"
        )
    skipped = {(r["size"], k): v for r in sizes for k, v in r["skipped"].items()}
    lines += [
        "",
        f"Each cell: wall time, peak RSS of the stage's process (and what it ran), what it wrote. Command: "
        f"`{doc['command']}`. Random bf16 weights at the real shapes (the embedded tokenizer's 49,152-row "
        "vocabulary for all): they measure cost, not quality. LoRA tune: r16 on every projection, batch 4 x 128 "
        "tokens, fp32 as `tune` loads on CPU, mean of 3 steps after one. "
        + ("Not run: " + "; ".join(f"{k[1]} at {k[0]} ({v})" for k, v in skipped.items()) + ". " if skipped else "")
        + (
            f"The LoRA tune column was measured again with nothing else running: `{doc['retune_command']}`. "
            if doc.get("retune_command")
            else ""
        )
        + "Plot: `benchmarks/results/scale/scale.svg`.",
    ]
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    stages = [s["stage"] for s in doc["results"][0]["stages"]]
    for ax, key, label in zip(
        axes, ("wall_s", "peak_rss_mb", "disk_mb"), ("wall s", "peak RSS MB", "disk MB"), strict=True
    ):
        for stage in stages:
            pts = [
                (r["params"] / 1e9, s[key])
                for r in doc["results"]
                for s in r["stages"]
                if s["stage"] == stage and s.get(key) is not None and s["ok"]
            ]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=stage)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([0.135, 0.36, 1.17, 6.88], ["135M", "360M", "1.1B", "7B"])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("parameters")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].axhline(24 * 1024, color="red", linestyle="--", linewidth=1)
    axes[1].text(0.15, 24 * 1024 * 1.05, "24 GB", color="red")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"edgewrite stages by model size (random weights; {doc['cpu']})")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    write_text_atomic(path, buf.getvalue())


def retune(a: argparse.Namespace) -> None:
    saved = a.out / "scale.json"
    if not saved.is_file():
        sys.exit(f"error: {saved} does not exist; run the benchmark first")
    doc = json.loads(saved.read_text())
    py, me = sys.executable, str(Path(__file__).resolve())
    for size in [s.strip() for s in a.retune.split(",") if s.strip()]:
        result = next((r for r in doc["results"] if r["size"] == size), None)
        if result is None or size not in TUNE_SIZES:
            sys.exit(f"error: no {size} row to re-measure (sizes with a tune: {', '.join(TUNE_SIZES)})")
        folder = a.work / size
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        log = a.work / f"{size}.retune.log"
        log.write_text("")
        print(f"{size}: re-measuring the LoRA tune", flush=True)
        run_stage("make checkpoint", [py, me, "--make", size, str(folder)], folder, log)
        stage = run_stage(
            f"LoRA tune {a.tune_steps} steps",
            [py, me, "--tune", size, str(folder / "base"), "--steps", str(a.tune_steps)],
            None,
            log,
        )
        found = [json.loads(x.removeprefix("TUNE ")) for x in log.read_text().splitlines() if x.startswith("TUNE ")]
        if stage["ok"] and found:
            result["tune"] = {**found[-1], "peak_rss_mb": stage["peak_rss_mb"], "remeasured": True}
            result["stages"] = [s for s in result["stages"] if not s["stage"].startswith("LoRA tune")] + [stage]
        shutil.rmtree(folder)
    doc["retune_command"] = "python " + " ".join(sys.argv)
    write_text_atomic(saved, json.dumps(doc, indent=1) + "\n")
    write_text_atomic(a.out / "scale.md", render(doc))
    plot(doc, a.out / "scale.svg")
    print(render(doc))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(SHAPES))
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "scale")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale")
    ap.add_argument("--tune-steps", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep each size's checkpoints and exports")
    ap.add_argument(
        "--retune",
        metavar="SIZES",
        help="only measure LoRA tune steps again at these sizes, into the saved scale.json (when the first "
        "measurement shared the machine with other work)",
    )
    ap.add_argument("--make", nargs=2, metavar=("SIZE", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--tune", nargs=2, metavar=("SIZE", "BASE"), help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.make:
        make_checkpoint(a.make[0], Path(a.make[1]))
        return
    if a.tune:
        print("TUNE " + json.dumps(tune_steps(a.tune[0], Path(a.tune[1]), a.steps)), flush=True)
        return
    if a.retune:
        retune(a)
        return
    sizes = [s.strip() for s in a.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SHAPES]
    if unknown:
        sys.exit(f"error: unknown size {', '.join(unknown)}; choose from {', '.join(SHAPES)}")
    import psutil

    a.out.mkdir(parents=True, exist_ok=True)
    results = []
    doc = {
        "benchmark": "scale",
        "command": "python benchmarks/scale.py" + (f" --sizes {a.sizes}" if a.sizes != ",".join(SHAPES) else ""),
        "cpu": cpu_name(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "versions": tool_versions(),
        "commit": git_commit(),
        "results": results,
    }
    for size in sizes:
        results.append(measure(size, a.work, a.keep, a.tune_steps))
        write_text_atomic(a.out / "scale.json", json.dumps(doc, indent=1) + "\n")  # each size as it finishes
        write_text_atomic(a.out / "scale.md", render(doc))
        plot(doc, a.out / "scale.svg")
    print(render(doc))


if __name__ == "__main__":
    main()
