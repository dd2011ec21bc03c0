"""Training throughput, each speed-up measured side by side in one run, on the same rows and steps.

- plain padded Trainer (fp32): what a first attempt looks like: random batches, every sequence padded
  to max_length, the LM head and loss on every position.
- edgewrite tune, full logits: length-grouped batches padded dynamically, bf16 autocast where the CPU
  has it (the previous release's loop).
- + answer-only logits: the LM head and loss only where a label is (``logits_to_keep`` mask).
- + no system prompt: the template's 16-token default system prompt replaced by an empty system turn
  (``prompt_style: chat-nosystem``): the same rows, fewer tokens each, so rows/s is the fair measure.
- + no LoRA dropout: ``lora_dropout: 0`` (Unsloth's and LLaMA-Factory's default). PEFT draws a dropout
  mask on the input of every adapted layer (210 here); on CPU ``aten::bernoulli_`` is then the second
  op of the profile after the matrix multiplies. Its effect on quality is a recipe-search candidate.

    python benchmarks/tune_throughput.py --recipe recipes/quickstart.yaml --steps 20

Writes benchmarks/results/NAME.{json,md} (--name, default tune_throughput).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.artifacts import git_commit, tool_versions  # noqa: E402
from edgewrite.bench import cpu_name  # noqa: E402
from edgewrite.data import build_dataset  # noqa: E402
from edgewrite.models import resolve_model  # noqa: E402
from edgewrite.recipe import load_recipe  # noqa: E402
from edgewrite.train import build_model, encode_rows, read_rows, tune  # noqa: E402


class _Counter:
    def __init__(self, collator) -> None:  # noqa: ANN001
        self.collator, self.tokens, self.padded = collator, 0, 0

    def __call__(self, features: list[dict]):  # noqa: ANN204
        batch = self.collator([{k: v for k, v in f.items() if k != "length"} for f in features])
        self.tokens += int(batch["attention_mask"].sum())
        self.padded += int(batch["attention_mask"].numel())
        return batch


def plain_loop(recipe, data_dir: Path, steps: int) -> dict:  # noqa: ANN001
    from datasets import Dataset
    from transformers import AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    cfg = recipe.train
    info = resolve_model(recipe.model)
    tok = AutoTokenizer.from_pretrained(info.path)
    rows, _ = encode_rows(read_rows(data_dir / "train.jsonl"), tok, "chat", cfg.max_length)
    ds = Dataset.from_list([{k: v for k, v in r.items() if k != "length"} for r in rows])
    model, _ = build_model(info.path, cfg)  # the same LoRA model as edgewrite tune's
    counter = _Counter(DataCollatorForSeq2Seq(tok, padding="max_length", max_length=cfg.max_length))
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
    return _summary(steps, seconds, counter.tokens, counter.padded, steps * cfg.batch_size, False)


def _summary(steps: int, seconds: float, tokens: int, padded: int, rows: int, bf16: bool) -> dict:
    return {
        "steps": steps,
        "seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / steps, 3),
        "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "rows_per_second": round(rows / seconds, 3),
        "padding_fraction": round(1 - tokens / padded, 4) if padded else 0.0,
        "bf16": bf16,
    }


def edgewrite_loop(recipe, data_dir: Path, steps: int, answer_only: bool, out: Path, **update) -> dict:  # noqa: ANN001, ANN003
    cfg = recipe.train.model_copy(
        update={
            "max_steps": steps,
            "save_steps": 10_000,
            "answer_only_logits": answer_only,
            "eval_steps": None,
            **update,
        }
    )
    stats = tune(cfg, recipe.model, data_dir, out, quiet=True)["stats"]
    padded = round(stats["tokens"] / (1 - stats["padding_fraction"])) if stats["padding_fraction"] < 1 else 0
    return _summary(steps, stats["seconds"], stats["tokens"], padded, steps * cfg.batch_size, stats["bf16"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="recipes/quickstart.yaml")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--name", default="tune_throughput", help="file name of the results, without extension")
    a = ap.parse_args()
    recipe = load_recipe(a.recipe)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    loops = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = {}
        for style in ("chat", "chat-nosystem"):
            data[style] = Path(tmp) / f"data-{style}"
            config = recipe.data.model_copy(update={"prompt_style": style})
            build_dataset(config, data[style], seed=recipe.train.seed)
        rss0 = psutil.Process().memory_info().rss
        loops["plain padded Trainer (fp32)"] = plain_loop(recipe, data["chat"], a.steps)
        loops["edgewrite tune, full logits"] = edgewrite_loop(recipe, data["chat"], a.steps, False, Path(tmp) / "a")
        loops["+ answer-only logits"] = edgewrite_loop(recipe, data["chat"], a.steps, True, Path(tmp) / "b")
        loops["+ no system prompt"] = edgewrite_loop(recipe, data["chat-nosystem"], a.steps, True, Path(tmp) / "c")
        loops["+ no LoRA dropout"] = edgewrite_loop(
            recipe, data["chat-nosystem"], a.steps, True, Path(tmp) / "d", lora_dropout=0.0
        )
    plain = loops["plain padded Trainer (fp32)"]
    for r in loops.values():
        r["speedup_tokens_per_second"] = round(r["tokens_per_second"] / plain["tokens_per_second"], 2)
        r["speedup_rows_per_second"] = round(r["rows_per_second"] / plain["rows_per_second"], 2)
    result = {
        "benchmark": "tune_throughput",
        "command": "python " + " ".join(sys.argv),
        "recipe": a.recipe,
        "conditions": {
            "cpu": cpu_name(),
            "cores": psutil.cpu_count(),
            "threads": torch.get_num_threads(),
            "device": "cpu",
            "versions": tool_versions(),
            "commit": git_commit(),
            "rss_before_mb": round(rss0 / 2**20),
        },
        "loops": loops,
    }
    (out / f"{a.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        f"# Training throughput ({a.steps} LoRA steps of {recipe.train.batch_size} rows, {recipe.name} recipe, "
        f"{result['conditions']['cpu']}, {torch.get_num_threads()} threads)",
        "",
        f"Command: `{result['command']}`",
        "",
        "| loop | s/step | real tokens/s | rows/s | padding | bf16 | x tokens/s | x rows/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in loops.items():
        md.append(
            f"| {name} | {r['seconds_per_step']} | {r['tokens_per_second']} | {r['rows_per_second']} | "
            f"{r['padding_fraction']:.0%} | {r['bf16']} | {r['speedup_tokens_per_second']}x | "
            f"{r['speedup_rows_per_second']}x |"
        )
    md += ["", "Each row adds one change to the row above it; x = against the plain padded loop.", ""]
    (out / f"{a.name}.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
