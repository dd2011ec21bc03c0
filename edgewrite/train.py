"""LoRA or full fine-tuning with transformers' Trainer, with selection on dev.

Loss on the response tokens only, and by default the LM head runs only there too (transformers'
``logits_to_keep`` boolean mask with ``shift_labels``: SmolLM2's 49,152-way head is a fifth of its
FLOPs and most positions are prompt). Batches are grouped by length and padded dynamically; bf16
autocast where the hardware has it (CUDA, CPUs with AMX or AVX-512 bf16). Checkpoints go into the
staged folder and ``resume`` continues from the last one.

With ``train.eval_steps``, every N steps (at each checkpoint) a fixed seeded dev subset is edited by
the model being trained and scored by ``edgewrite.evaluate`` (the code ``edgewrite eval`` runs); the
checkpoint with the best mean headline score (ties: lower dev loss) is the one written out.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgewrite.artifacts import existing_matches, fingerprint, read_manifest, staged_dir, write_manifest
from edgewrite.errors import EdgewriteError
from edgewrite.recipe import TrainConfig
from edgewrite.tasks import GENERAL, build_prompt, stop_text

_CHECKPOINTS = "checkpoints"
_FP_FILE = ".fingerprint"
_BEST = "best"
_SELECTION = "selection.json"
_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_config.json", "model.safetensors", "config.json")


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


def edit_marks(source_ids: list[int], target_ids: list[int]) -> list[bool]:
    """Which target tokens make an edit: those a token alignment with the source marks as replaced or
    inserted, and the token right after a deletion (where the model must decide to skip)."""
    import difflib

    marks = [False] * len(target_ids)
    for op, _i1, _i2, j1, j2 in difflib.SequenceMatcher(a=source_ids, b=target_ids, autojunk=False).get_opcodes():
        if op in ("replace", "insert"):
            marks[j1:j2] = [True] * (j2 - j1)
        elif op == "delete" and j1 < len(marks):
            marks[j1] = True
    return marks


def encode_rows(
    rows: list[dict], tokenizer: Any, style: str, max_length: int, edit_weight: float = 1.0
) -> tuple[list[dict], int]:
    """Token ids with labels masked (-100) over the prompt; rows longer than max_length are dropped.

    With ``edit_weight`` > 1 each row also gets per-token loss weights: answer tokens that change the
    input weigh ``edit_weight``, the others 1 (the edit-weighted MLE of Junczys-Dowmunt et al., 2018,
    against a small model's pull towards copying its input)."""
    stop = stop_text(tokenizer, style)
    encoded, too_long = [], 0
    for row in rows:
        prompt = build_prompt(tokenizer, row["instruction"], row["source"], style)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer = tokenizer(row["references"][0], add_special_tokens=False)["input_ids"]
        t_ids = answer + tokenizer(stop, add_special_tokens=False)["input_ids"]
        ids = p_ids + t_ids
        if len(ids) > max_length:
            too_long += 1
            continue
        item = {
            "input_ids": ids,
            "attention_mask": [1] * len(ids),
            "labels": [-100] * len(p_ids) + t_ids,
            "length": len(ids),
        }
        if edit_weight != 1.0:
            source = tokenizer(row["source"], add_special_tokens=False)["input_ids"]
            marks = edit_marks(source, answer) + [False] * (len(t_ids) - len(answer))
            item["loss_weights"] = [0.0] * len(p_ids) + [edit_weight if m else 1.0 for m in marks]
        encoded.append(item)
    return encoded, too_long


def read_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Collator:
    """Pads a batch (to a multiple of 8), counts its real tokens, and with ``answer_only`` asks the
    model for logits only where the next token is a label: a boolean ``logits_to_keep`` mask and the
    matching ``shift_labels``. Per-token ``loss_weights`` (edit weighting) are shifted alike."""

    def __init__(self, tokenizer: Any, answer_only: bool) -> None:
        from transformers import DataCollatorForSeq2Seq

        self.pad = DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8, label_pad_token_id=-100, padding=True)
        self.answer_only = answer_only
        self.tokens = 0
        self.padded = 0

    def __call__(self, features: list[dict]) -> Any:
        import torch

        weights = [f.get("loss_weights") for f in features]
        batch = self.pad([{k: v for k, v in f.items() if k not in ("length", "loss_weights")} for f in features])
        self.tokens += int(batch["attention_mask"].sum())
        self.padded += int(batch["attention_mask"].numel())
        labels = batch["labels"]
        nxt = torch.full_like(labels, -100)
        nxt[:, :-1] = labels[:, 1:]
        keep = nxt != -100
        if self.answer_only:
            batch["logits_to_keep"] = keep
            batch["shift_labels"] = nxt[keep]
        if all(w is not None for w in weights):
            w = torch.zeros(labels.shape, dtype=torch.float32)
            for i, row in enumerate(weights):
                w[i, : len(row) - 1] = torch.tensor(row[1:])  # the weight of the label each position predicts
            batch["loss_weights"] = w[keep] if self.answer_only else w
        return batch


def _trainer_class() -> Any:
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """transformers' Trainer; with per-token ``loss_weights`` in the batch, the weighted cross-entropy
        (normalized by the total weight) replaces the model's own mean loss."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001, ANN201
            weights = inputs.pop("loss_weights", None)
            if weights is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs.pop("labels")
            target = inputs.pop("shift_labels", None)
            outputs = model(**inputs)
            logits = outputs.logits
            if target is None:  # every position's logits: shift here
                logits = logits[:, :-1].reshape(-1, logits.shape[-1])
                target = labels[:, 1:].reshape(-1)
                weights = weights[:, :-1].reshape(-1)
            ce = torch.nn.functional.cross_entropy(logits.float(), target, ignore_index=-100, reduction="none")
            loss = (ce * weights).sum() / weights.sum().clamp(min=1e-9)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


def tune_fingerprint(config: TrainConfig, model_ref: str, data_manifest: dict) -> str:
    return fingerprint({"train": config.model_dump(), "model": model_ref, "data": data_manifest["fingerprint"]})


def resume_state(out: Path, fp: str) -> str | None:
    """The last checkpoint of an interrupted tune of these settings into ``out``, else None."""
    partial = out.with_name(out.name + ".partial")
    fp_file = partial / _FP_FILE
    if not fp_file.is_file() or fp_file.read_text() != fp or not (partial / _CHECKPOINTS).is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(partial / _CHECKPOINTS))


def _resume_checkpoint(out: Path, fp: str) -> str:
    partial = out.with_name(out.name + ".partial")
    fp_file = partial / _FP_FILE
    if partial.is_dir() and fp_file.is_file() and fp_file.read_text() != fp:
        raise EdgewriteError(
            f"the interrupted tune in {partial} was made with other settings (train, selection or data); "
            "restore them, or run without --resume to start over"
        )
    checkpoint = resume_state(out, fp)
    if checkpoint is None:
        raise EdgewriteError(f"no checkpoint saved yet in {partial}; run without --resume")
    return checkpoint


@dataclass
class _Run:
    """What every step of a tune shares: where it runs and on what."""

    device: str
    bf16: bool
    style: str
    tokenizer: Any
    dataset: Any
    too_long: int
    model_path: Path
    data_dir: Path
    data_manifest: dict
    train_rows: list[dict] = field(default_factory=list)


def _setup(config: TrainConfig, model_path: Path, data_dir: Path, data_manifest: dict) -> _Run:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    device = pick_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    bf16 = use_bf16(config.bf16, device)
    style = data_manifest.get("prompt_style", "chat")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = read_rows(data_dir / "train.jsonl")
    encoded, too_long = encode_rows(rows, tokenizer, style, config.max_length, config.edit_weight)
    if not encoded:
        raise EdgewriteError(f"every training row is longer than train.max_length={config.max_length}")
    return _Run(
        device, bf16, style, tokenizer, Dataset.from_list(encoded), too_long, model_path, data_dir, data_manifest, rows
    )


def total_steps(config: TrainConfig, rows: int) -> int:
    if config.max_steps > 0:
        return config.max_steps
    per_epoch = math.ceil(rows / config.batch_size / config.grad_accum)
    return max(1, math.ceil(per_epoch * config.epochs))


def load_dtype(config: TrainConfig, device: str, bf16: bool) -> str:
    """The dtype the model is loaded in: a LoRA tune on CUDA in bf16 keeps the frozen base in bf16 (half the
    memory; PEFT keeps the adapter in fp32), as Unsloth and LLaMA-Factory do; full tuning keeps fp32 master
    weights for mixed precision, and CPU kernels compute in fp32."""
    return "bfloat16" if config.method == "lora" and device == "cuda" and bf16 else "float32"


def build_model(model_path: Path, config: TrainConfig, device: str = "cpu", bf16: bool = False) -> tuple[Any, int]:
    import torch
    from transformers import AutoModelForCausalLM, set_seed

    from edgewrite import quiet_gptqmodel

    quiet_gptqmodel()
    set_seed(config.seed)
    dtype = getattr(torch, load_dtype(config, device, bf16))
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, use_safetensors=True)
    if config.method == "full":
        return model, sum(p.numel() for p in model.parameters())
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
    return model, sum(p.numel() for p in model.parameters() if p.requires_grad)


class DevSelection:
    """Scores checkpoints on a fixed dev subset with the eval code and keeps one checkpoint's weights: each
    later checkpoint replaces the kept one unless it is significantly worse on those rows (paired bootstrap
    of the mean headline score, 95 %); ties go to the later, more trained checkpoint.

    Why not simply the highest mean: a few dozen rows per task put a half-trained checkpoint ahead by noise
    (experiments/LOG.md, 2026-12-04: the 30-row selection kept step 600 of 1,258, which the full dev sets
    then found 1.0 [+0.0, +2.0] below the last step, simplification 3.7 below)."""

    def __init__(self, config: TrainConfig, run: _Run, folder: Path) -> None:
        from edgewrite.evaluate import gather, training_keys

        self.config, self.run, self.folder = config, run, folder
        tasks = sorted(t for t in run.data_manifest.get("counts", {}) if t != GENERAL)
        exclude, fraction = training_keys({"data": {"path": str(run.data_dir)}})
        self.sets = gather(
            Path(run.data_manifest["data_dir"]), tasks, "dev", config.eval_rows, exclude, fraction, headline_only=True
        )
        self.history: list[dict] = []
        self.best: dict | None = None
        self.best_outputs: dict[str, list[str]] | None = None  # the kept checkpoint's, for the paired test
        self.outputs: dict[int, dict[str, list[str]]] = {}
        self.seconds = 0.0
        self._dev_loss_rows = self._loss_rows()

    def _loss_rows(self) -> list[dict]:
        from edgewrite.tasks import TASKS

        rows = [
            {
                "instruction": TASKS[s.spec.task].default_instruction,
                "source": r["source"],
                "references": r["references"],
            }
            for s in self.sets
            for r in s.rows
        ]
        encoded, _ = encode_rows(rows, self.run.tokenizer, self.run.style, 10_000)
        return encoded

    def load(self, step: int) -> None:
        """On resume: the history up to the checkpoint being resumed."""
        path = self.folder / _SELECTION
        if path.is_file():
            saved = json.loads(path.read_text())
            self.history = [h for h in saved["history"] if h["step"] <= step]
            best = saved.get("best") or {}
            self.best = best if best and best["step"] <= step else None
            self.best_outputs = saved.get("best_outputs") if self.best else None
            self.seconds = saved.get("seconds", 0.0)

    def _dev_loss(self, model: Any) -> float:
        import torch

        collate = Collator(self.run.tokenizer, answer_only=False)
        total, count = 0.0, 0
        rows = self._dev_loss_rows
        with torch.inference_mode(), self._autocast():
            for i in range(0, len(rows), self.config.eval_batch_size):
                batch = collate(rows[i : i + self.config.eval_batch_size])
                batch = {k: v.to(self.run.device) for k, v in batch.items()}
                out = model(**batch)
                n = int((batch["labels"][:, 1:] != -100).sum())
                total += float(out.loss) * n
                count += n
        return total / max(count, 1)

    def _autocast(self) -> Any:
        import contextlib

        import torch

        # On CPU, bf16 autocast makes decoding slower (casts cost more than they save at this size).
        if not self.run.bf16 or self.run.device != "cuda":
            return contextlib.nullcontext()
        return torch.autocast(self.run.device, dtype=torch.bfloat16)

    def evaluate(self, model: Any, step: int) -> dict:
        from transformers import AutoTokenizer

        from edgewrite.edit import ModelEditor
        from edgewrite.evaluate import run_eval, score_outputs
        from edgewrite.runtimes.hf import HFRuntime

        t0 = time.perf_counter()
        was_training = model.training
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(self.run.model_path)  # left padding, apart from training's
        runtime = HFRuntime.from_model(model, tokenizer, self.run.device, self.config.eval_batch_size)
        with self._autocast():
            editor = ModelEditor(runtime, self.run.style)
            outputs, _, _ = run_eval(editor, self.sets, batch_size=self.config.eval_batch_size)
        quality = score_outputs(self.sets, outputs, resamples=0)
        self.outputs[step] = outputs
        dev_loss = self._dev_loss(model)
        if was_training:
            model.train()
        entry = {
            "step": step,
            "mean": quality["mean"],
            "headline": quality["headline"],
            "dev_loss": round(dev_loss, 5),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        self.seconds += entry["seconds"]
        self.history.append(entry)
        return entry

    def is_better(self, entry: dict) -> bool:
        """Whether ``entry``'s checkpoint replaces the kept one (it comes later in training)."""
        if self.best is None:
            return True
        new = self.outputs.get(entry["step"])
        if new is not None and self.best_outputs is not None:
            from edgewrite.bootstrap import paired
            from edgewrite.evaluate import headline_scorers

            diff = paired(headline_scorers(self.sets, new), headline_scorers(self.sets, self.best_outputs))["mean"]
            entry["vs_kept"] = {"step": self.best["step"], **diff.as_dict()}
            return diff.hi >= 0  # not significantly worse
        # no outputs to pair (a selection saved before they were kept): the higher mean
        if entry["mean"] != self.best["mean"]:
            return entry["mean"] > self.best["mean"]
        return entry["dev_loss"] < self.best["dev_loss"]

    def keep(self, entry: dict, checkpoint: Path) -> None:
        """The checkpoint's weights become the best (staged, then renamed)."""
        staging = self.folder / (_BEST + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name in _WEIGHT_FILES:
            if (checkpoint / name).is_file():
                shutil.copy2(checkpoint / name, staging / name)
        shutil.rmtree(self.folder / _BEST, ignore_errors=True)
        os.replace(staging, self.folder / _BEST)
        self.best = entry
        self.best_outputs = self.outputs.get(entry["step"])
        self.outputs = {}

    def evaluations_without_gain(self) -> int:
        if self.best is None:
            return len(self.history)
        return sum(1 for h in self.history if h["step"] > self.best["step"])

    def save(self) -> None:
        path = self.folder / _SELECTION
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "history": self.history,
                    "best": self.best,
                    "best_outputs": self.best_outputs,
                    "seconds": round(self.seconds, 1),
                },
                indent=2,
            )
            + "\n"
        )
        os.replace(tmp, path)

    def summary(self) -> dict:
        return {
            "best_step": self.best["step"] if self.best else None,
            "best_mean": self.best["mean"] if self.best else None,
            "best_headline": self.best["headline"] if self.best else None,
            "eval_rows_per_task": self.config.eval_rows,
            "sets": {s.key: len(s.rows) for s in self.sets},
            "history": self.history,
            "eval_seconds": round(self.seconds, 1),
        }


def _callbacks(collate: Collator, quiet: bool, selector: DevSelection | None, checkpoints: Path) -> list[Any]:
    from transformers import TrainerCallback

    from edgewrite.progress import Progress

    class Track(TrainerCallback):
        """Progress with loss, tok/s and the last dev score; selection at every checkpoint."""

        def __init__(self) -> None:
            self.bar: Progress | None = None
            self.t0 = 0.0
            self.tokens0 = 0
            self.eval_s = 0.0

        def on_train_begin(self, args, state, control, model=None, **kw):  # noqa: ANN001
            self.bar = Progress(
                "tune",
                state.max_steps,
                quiet=quiet,
                fields={"loss": float("nan"), "tps": 0.0, "dev": "-"},
                fmt="loss {loss:.3f} | {tps:.0f} tok/s | dev {dev}",
            ).__enter__()
            self.bar.update(completed=state.global_step)
            self.t0, self.tokens0 = time.perf_counter(), collate.tokens
            if selector is not None:
                selector.load(state.global_step)
                if selector.history:
                    self.bar.update(dev=f"{selector.history[-1]['mean']:.2f}")
                last = checkpoints / f"checkpoint-{state.global_step}"
                if (
                    state.global_step
                    and last.is_dir()
                    and not any(h["step"] == state.global_step for h in selector.history)
                ):
                    self._select(state.global_step, model, last, control)

        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            if logs and "loss" in logs and self.bar:
                self.bar.update(loss=logs["loss"])

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            if selector is not None and state.global_step == state.max_steps:
                control.should_save = True  # the last step is a checkpoint, so it is scored too
            train_s = max(time.perf_counter() - self.t0 - self.eval_s, 1e-9)
            if self.bar:
                self.bar.update(completed=state.global_step, tps=(collate.tokens - self.tokens0) / train_s)

        def on_save(self, args, state, control, model=None, **kw):  # noqa: ANN001
            if selector is not None:
                self._select(state.global_step, model, checkpoints / f"checkpoint-{state.global_step}", control)

        def _select(self, step, model, checkpoint, control) -> None:  # noqa: ANN001
            from accelerate import PartialState
            from accelerate.utils import broadcast_object_list

            stop = [False]
            if PartialState().is_main_process:  # one process scores; all stop together
                stop = [self._score(step, model, checkpoint)]
            if broadcast_object_list(stop, from_process=0)[0]:
                control.should_training_stop = True  # never reset it: the Trainer sets it at max_steps

        def _score(self, step, model, checkpoint) -> bool:  # noqa: ANN001
            t0 = time.perf_counter()
            entry = selector.evaluate(model, step)
            if selector.is_better(entry):
                selector.keep(entry, checkpoint)
            selector.save()
            self.eval_s += time.perf_counter() - t0
            best = selector.best
            if self.bar:
                self.bar.update(dev=f"{entry['mean']:.2f}")
                self.bar.log(
                    f"step {step}: dev mean {entry['mean']:.2f}, dev loss {entry['dev_loss']:.4f} "
                    f"(kept: step {best['step']}, dev mean {best['mean']:.2f})"
                )
            patience = selector.config.early_stopping
            if patience and selector.evaluations_without_gain() >= patience:
                if self.bar:
                    self.bar.log(f"early stop: {patience} evaluations significantly worse than step {best['step']}")
                return True
            return False

        def on_train_end(self, args, state, control, **kw):  # noqa: ANN001
            if self.bar:
                self.bar.__exit__(None, None, None)

    return [Track()]


def _training_args(config: TrainConfig, run: _Run, folder: Path, selecting: bool) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(folder / _CHECKPOINTS),
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
        save_steps=config.eval_steps if selecting else config.save_steps,
        save_total_limit=2,
        bf16=run.bf16,
        use_cpu=run.device == "cpu",
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        activation_checkpointing=config.gradient_checkpointing,
        seed=config.seed,
        data_seed=config.seed,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def _write_artifact(
    tmp: Path, trainer: Any, run: _Run, config: TrainConfig, selector: DevSelection | None, **fields: Any
) -> dict[str, Any]:
    if selector is not None and (tmp / _BEST).is_dir():
        for f in (tmp / _BEST).iterdir():  # the best checkpoint's weights are the artifact
            os.replace(f, tmp / f.name)
        shutil.rmtree(tmp / _BEST)
        if config.method == "full":
            trainer.model.generation_config.save_pretrained(tmp)
    else:
        trainer.model.save_pretrained(tmp)
        if config.method == "full":
            trainer.model.generation_config.save_pretrained(tmp)
    run.tokenizer.save_pretrained(tmp)
    for leftover in (_CHECKPOINTS, _SELECTION, _FP_FILE):
        path = tmp / leftover
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return write_manifest(
        tmp,
        "adapter" if config.method == "lora" else "full",
        format="peft" if config.method == "lora" else "safetensors",
        prompt_style=run.style,
        stop_token=stop_text(run.tokenizer, run.style),
        train=config.model_dump(),
        **({"custom_tasks": run.data_manifest["custom_tasks"]} if run.data_manifest.get("custom_tasks") else {}),
        **fields,
    )


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
    from accelerate import PartialState

    state = PartialState()  # one process, or one of several under `accelerate launch`
    data_manifest = read_manifest(data_dir, kinds=("data",))
    from edgewrite.tasks import register_from_manifest

    register_from_manifest(data_manifest)  # the data's custom tasks, whether or not a recipe declared them here
    fp = tune_fingerprint(config, model_ref, data_manifest)
    with state.main_process_first():  # only the first process may clear a folder of another run
        done = existing_matches(out, fp, force)
    if done:
        return read_manifest(out)
    from edgewrite.models import resolve_model

    info = resolve_model(model_ref)
    checkpoint = _resume_checkpoint(out, fp) if resume else None
    run = _setup(config, info.path, data_dir, data_manifest)
    steps = total_steps(config, len(run.dataset))
    if config.eval_steps and config.eval_steps > steps:
        raise EdgewriteError(
            f"train.eval_steps={config.eval_steps} exceeds the run's {steps} steps; "
            f"lower it (e.g. {max(1, steps // 4)})"
        )
    if run.device == "cuda":  # refuse a plan the GPUs cannot hold before loading anything big
        from edgewrite.memory import check_fits, free_gpu_memory, model_shape, plan

        gpus = state.num_processes
        check_fits(plan(model_shape(str(info.path)), config, gpus, sharded=gpus > 1, bf16=run.bf16), free_gpu_memory())
    partial = out.with_name(out.name + ".partial")
    selector = DevSelection(config, run, partial) if config.eval_steps else None
    model, trainable = build_model(info.path, config, run.device, run.bf16)

    from transformers.trainer_callback import PrinterCallback

    main = state.is_main_process
    with staged_dir(out, keep_partial=resume, main=main, resumable=True) as tmp:
        if main:
            (tmp / _FP_FILE).write_text(fp)
        state.wait_for_everyone()
        collate = Collator(run.tokenizer, config.answer_only_logits)
        trainer = _trainer_class()(
            model=model,
            args=_training_args(config, run, tmp, selector is not None),
            train_dataset=run.dataset,
            data_collator=collate,
            callbacks=_callbacks(collate, quiet, selector, tmp / _CHECKPOINTS),
        )
        trainer.remove_callback(PrinterCallback)  # the progress shows loss; no raw dicts on stdout
        t0 = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=checkpoint)
        if not main:  # the other processes of a multi-process run write nothing
            return {}
        seconds = time.perf_counter() - t0 - (selector.seconds if selector else 0.0)
        stats = _stats(trainer, result, collate, run, seconds, trainable, checkpoint)
        (tmp / "train_log.json").write_text(
            json.dumps(
                {
                    "stats": stats,
                    "log_history": trainer.state.log_history,
                    "selection": selector.summary() if selector else None,
                },
                indent=2,
            )
            + "\n"
        )
        manifest = _write_artifact(
            tmp,
            trainer,
            run,
            config,
            selector,
            fingerprint=fp,
            base_model=info.describe(),
            data={"path": str(data_dir), "fingerprint": data_manifest["fingerprint"]},
            stats=stats,
            selection={k: v for k, v in selector.summary().items() if k != "history"} if selector else None,
        )
    return manifest


def _stats(
    trainer: Any, result: Any, collate: Collator, run: _Run, seconds: float, trainable: int, checkpoint: str | None
) -> dict[str, Any]:
    import torch

    seconds = max(seconds, 1e-9)
    return {
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "seconds": round(seconds, 2),
        "tokens": collate.tokens,
        "tokens_per_second": round(collate.tokens / seconds, 1),
        "padding_fraction": round(1 - collate.tokens / collate.padded, 4) if collate.padded else 0.0,
        "rows": len(run.dataset),
        "rows_too_long": run.too_long,
        "trainable_parameters": trainable,
        "device": run.device,
        "bf16": run.bf16,
        "threads": torch.get_num_threads(),
        "resumed_from": Path(checkpoint).name if checkpoint else None,
    }
