"""Training throughput: `edgewrite tune` against a plain padded Trainer loop, same rows and steps.

The plain loop is what a first attempt looks like: fp32, random batches, every sequence padded to
max_length. `edgewrite tune` groups batches by length, pads dynamically and uses bf16 autocast
where the CPU has it. Both count only real (non-padding) tokens.

    python benchmarks/tune_throughput.py --recipe recipes/quickstart.yaml --steps 30

Writes benchmarks/results/tune_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch

from edgewrite.artifacts import git_commit, tool_versions
from edgewrite.data import build_dataset
from edgewrite.models import resolve_model
from edgewrite.recipe import load_recipe
from edgewrite.train import _read_rows, _TokenCounter, encode_rows, tune


def plain_loop(recipe, data_dir: Path, steps: int) -> dict:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    cfg = recipe.train
    info = resolve_model(recipe.model)
    tok = AutoTokenizer.from_pretrained(info.path)
    rows, _ = encode_rows(_read_rows(data_dir / "train.jsonl"), tok, "chat", cfg.max_length)
    ds = Dataset.from_list([{k: v for k, v in r.items() if k != "length"} for r in rows])
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(info.path, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_targets,
            task_type="CAUSAL_LM",
        ),
    )
    counter = _TokenCounter(DataCollatorForSeq2Seq(tok, padding="max_length", max_length=cfg.max_length))
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr,
            max_steps=steps,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=True,
            seed=cfg.seed,
            logging_steps=steps,
            remove_unused_columns=False,
        )
        trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=counter)
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    return {
        "steps": steps,
        "seconds": round(seconds, 2),
        "tokens": counter.tokens,
        "tokens_per_second": round(counter.tokens / seconds, 1),
        "seconds_per_step": round(seconds / steps, 3),
        "padding_fraction": round(1 - counter.tokens / counter.padded, 4),
        "bf16": False,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="recipes/quickstart.yaml")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    recipe = load_recipe(a.recipe)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        build_dataset(recipe.data, data_dir, seed=recipe.train.seed)
        rss0 = psutil.Process().memory_info().rss
        cfg = recipe.train.model_copy(update={"max_steps": a.steps, "save_steps": 10_000})
        ours = tune(cfg, recipe.model, data_dir, Path(tmp) / "adapter", quiet=True)["stats"]
        ours["seconds_per_step"] = round(ours["seconds"] / ours["steps"], 3)
        plain = plain_loop(recipe, data_dir, a.steps)
    speedup = ours["tokens_per_second"] / plain["tokens_per_second"]
    result = {
        "benchmark": "tune_throughput",
        "command": "python " + " ".join(sys.argv),
        "recipe": a.recipe,
        "conditions": {
            "cpu": platform.processor() or platform.machine(),
            "cores": psutil.cpu_count(),
            "threads": torch.get_num_threads(),
            "device": "cpu",
            "versions": tool_versions(),
            "commit": git_commit(),
            "rss_before_mb": round(rss0 / 2**20),
        },
        "edgewrite_tune": ours,
        "plain_padded_trainer": plain,
        "speedup_tokens_per_second": round(speedup, 2),
    }
    (out / "tune_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        f"# Training throughput ({a.steps} LoRA steps, {recipe.name} recipe, CPU, {torch.get_num_threads()} threads)",
        "",
        f"Command: `{result['command']}`",
        "",
        "| loop | s/step | real tokens/s | padding | bf16 |",
        "|---|---|---|---|---|",
    ]
    for name, r in (("plain padded Trainer (fp32)", plain), ("edgewrite tune", ours)):
        md.append(
            f"| {name} | {r['seconds_per_step']} | {r['tokens_per_second']} | "
            f"{r['padding_fraction']:.0%} | {r['bf16']} |"
        )
    md += ["", f"Speed-up in real tokens/s: **{speedup:.2f}x**", ""]
    (out / "tune_throughput.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
