"""LoRA or full fine-tuning with transformers' Trainer.

Loss on the response tokens only; batches grouped by length and padded dynamically (to a multiple
of 8) so that padding does not eat the step; bf16 autocast where the hardware has it (CUDA, and
CPUs with AMX or AVX-512 bf16); checkpoints every N steps into the staged folder, and ``resume``
continues from the last one.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from edgewrite.artifacts import existing_matches, fingerprint, read_manifest, staged_dir, write_manifest
from edgewrite.errors import EdgewriteError
from edgewrite.recipe import TrainConfig
from edgewrite.tasks import build_prompt, stop_text

_CHECKPOINTS = "checkpoints"
_FP_FILE = ".fingerprint"


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def pick_device(requested: str) -> str:
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise EdgewriteError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def use_bf16(setting: str | bool, device: str) -> bool:
    import torch

    if setting is False:
        return False
    supported = torch.cuda.is_bf16_supported() if device == "cuda" else cpu_has_bf16()
    if setting is True and not supported:
        raise EdgewriteError(f"train.bf16=true but this {device} has no bf16 support; use train.bf16=auto")
    return supported


def encode_rows(rows: list[dict], tokenizer: Any, style: str, max_length: int) -> tuple[list[dict], int]:
    """Token ids with labels masked (-100) over the prompt; rows longer than max_length are dropped."""
    stop = stop_text(tokenizer, style)
    encoded, too_long = [], 0
    for row in rows:
        prompt = build_prompt(tokenizer, row["instruction"], row["source"], style)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        t_ids = tokenizer(row["references"][0] + stop, add_special_tokens=False)["input_ids"]
        ids = p_ids + t_ids
        if len(ids) > max_length:
            too_long += 1
            continue
        encoded.append(
            {
                "input_ids": ids,
                "attention_mask": [1] * len(ids),
                "labels": [-100] * len(p_ids) + t_ids,
                "length": len(ids),
            }
        )
    return encoded, too_long


def _read_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class _TokenCounter:
    """Wraps a collator to count the real (non-padding) tokens the trainer consumes."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator
        self.tokens = 0
        self.padded = 0

    def __call__(self, features: list[dict]) -> Any:
        batch = self.collator([{k: v for k, v in f.items() if k != "length"} for f in features])
        self.tokens += int(batch["attention_mask"].sum())
        self.padded += int(batch["attention_mask"].numel())
        return batch


def _progress_callback(counter: _TokenCounter, quiet: bool) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | None = None
            self.task = None
            self.loss = float("nan")
            self.t0 = 0.0
            self.tokens0 = 0

        def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
            self.progress = Progress(
                TextColumn("[bold]tune"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} steps"),
                TextColumn("loss {task.fields[loss]:.3f}"),
                TextColumn("{task.fields[tps]:.0f} tok/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                disable=quiet,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "tune", total=state.max_steps, completed=state.global_step, loss=float("nan"), tps=0.0
            )
            self.t0, self.tokens0 = time.perf_counter(), counter.tokens

        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            if logs and "loss" in logs:
                self.loss = logs["loss"]

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            tps = (counter.tokens - self.tokens0) / max(time.perf_counter() - self.t0, 1e-9)
            self.progress.update(self.task, completed=state.global_step, loss=self.loss, tps=tps)

        def on_train_end(self, args, state, control, **kw):  # noqa: ANN001
            if self.progress:
                self.progress.stop()

    return RichProgress()


def tune_fingerprint(config: TrainConfig, model_ref: str, data_manifest: dict) -> str:
    return fingerprint({"train": config.model_dump(), "model": model_ref, "data": data_manifest["fingerprint"]})


def tune(
    config: TrainConfig,
    model_ref: str,
    data_dir: Path,
    out: Path,
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Fine-tune ``model_ref`` on the data artifact at ``data_dir``; write an adapter or full model to ``out``."""
    data_manifest = read_manifest(data_dir, kinds=("data",))
    fp = tune_fingerprint(config, model_ref, data_manifest)
    if existing_matches(out, fp, force):
        return read_manifest(out)

    from edgewrite.models import resolve_model

    info = resolve_model(model_ref)
    partial = out.with_name(out.name + ".partial")
    checkpoint = None
    if resume:
        if not partial.is_dir() or (partial / _FP_FILE).is_file() and (partial / _FP_FILE).read_text() != fp:
            raise EdgewriteError(f"nothing to resume at {partial} for these settings; run without --resume")
        from transformers.trainer_utils import get_last_checkpoint

        if (partial / _CHECKPOINTS).is_dir():
            checkpoint = get_last_checkpoint(str(partial / _CHECKPOINTS))
        if checkpoint is None:
            raise EdgewriteError(f"no checkpoint saved yet in {partial}; run without --resume")

    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    device = pick_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    bf16 = use_bf16(config.bf16, device)
    style = data_manifest.get("prompt_style", "chat")
    tokenizer = AutoTokenizer.from_pretrained(info.path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_rows = _read_rows(data_dir / "train.jsonl")
    encoded, too_long = encode_rows(train_rows, tokenizer, style, config.max_length)
    if not encoded:
        raise EdgewriteError(f"every training row is longer than train.max_length={config.max_length}")

    from datasets import Dataset

    dataset = Dataset.from_list(encoded)
    set_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(info.path, dtype=torch.float32)
    trainable = sum(p.numel() for p in model.parameters())
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=config.lora_targets,
                task_type="CAUSAL_LM",
            ),
        )
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    with staged_dir(out, keep_partial=resume) as tmp:
        (tmp / _FP_FILE).write_text(fp)
        args = TrainingArguments(
            output_dir=str(tmp / _CHECKPOINTS),
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            learning_rate=config.lr,
            weight_decay=config.weight_decay,
            warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
            lr_scheduler_type=config.scheduler,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            logging_steps=config.logging_steps,
            save_strategy="steps",
            save_steps=config.save_steps,
            save_total_limit=2,
            bf16=bf16,
            use_cpu=device == "cpu",
            train_sampling_strategy="group_by_length" if config.group_by_length else "random",
            activation_checkpointing=config.gradient_checkpointing,
            seed=config.seed,
            data_seed=config.seed,
            report_to=[],
            disable_tqdm=True,
            dataloader_num_workers=0,
            remove_unused_columns=False,
        )
        counter = _TokenCounter(
            DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8, label_pad_token_id=-100, padding=True)
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=counter,
            callbacks=[_progress_callback(counter, quiet)],
        )
        trainer.remove_callback(PrinterCallback)  # the rich bar shows loss; no raw dicts on stdout
        t0 = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=checkpoint)
        seconds = time.perf_counter() - t0
        steps = trainer.state.global_step
        if config.method == "lora":
            trainer.model.save_pretrained(tmp)
        else:
            trainer.model.save_pretrained(tmp)
            trainer.model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        stats = {
            "steps": steps,
            "train_loss": result.training_loss,
            "seconds": round(seconds, 2),
            "tokens": counter.tokens,
            "tokens_per_second": round(counter.tokens / seconds, 1) if seconds else None,
            "padding_fraction": round(1 - counter.tokens / counter.padded, 4) if counter.padded else 0.0,
            "rows": len(encoded),
            "rows_too_long": too_long,
            "trainable_parameters": trainable,
            "device": device,
            "bf16": bf16,
            "threads": torch.get_num_threads(),
            "resumed_from": Path(checkpoint).name if checkpoint else None,
        }
        (tmp / "train_log.json").write_text(
            json.dumps({"stats": stats, "log_history": trainer.state.log_history}, indent=2) + "\n"
        )
        shutil.rmtree(tmp / _CHECKPOINTS, ignore_errors=True)
        (tmp / _FP_FILE).unlink()
        manifest = write_manifest(
            tmp,
            "adapter" if config.method == "lora" else "full",
            fingerprint=fp,
            format="peft" if config.method == "lora" else "safetensors",
            base_model=info.describe(),
            data={"path": str(data_dir), "fingerprint": data_manifest["fingerprint"]},
            prompt_style=style,
            stop_token=stop_text(tokenizer, style),
            train=config.model_dump(),
            stats=stats,
        )
    return manifest
