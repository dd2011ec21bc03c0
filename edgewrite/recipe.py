"""Recipes: YAML files validated by pydantic (unknown keys rejected), with ``--set key=value`` overrides."""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgewrite.errors import EdgewriteError
from edgewrite.tasks import GENERAL, TASK_NAMES, TASKS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSource(_Strict):
    """One input file (JSONL in the layout of shared/data) or one hub data set.

    ``role`` says what its rows may be used for: ``train``, ``dev``, or ``split`` (a deterministic
    split by a hash of the normalized source text, so that no dev row is ever trained on).
    """

    path: str | None = None
    hub: str | None = None
    hub_split: str = "train"
    task: str | None = None
    role: Literal["train", "dev", "split"] = "split"
    max_rows: int | None = Field(
        default=None,
        ge=1,
        description="at most this many training rows from this source (a fixed sample: the rows whose id "
        "hashes lowest), like LLaMA-Factory's max_samples: a large set mixed in at a moderate share",
    )
    min_score: float | None = Field(
        default=None,
        ge=0,
        le=5,
        description="scored paraphrase pairs kept at this similarity or above: an STS-B CSV "
        "(sentence1,sentence2,score; default 5.0, EditEval's cut) or rows whose id ends in -s<score>",
    )

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str | None) -> str | None:
        if v is not None and v not in (*TASKS, GENERAL):
            raise ValueError(
                f"unknown task '{v}' (tasks: {', '.join(TASKS)}, {GENERAL}; or declare it in custom_tasks)"
            )
        return v

    def model_post_init(self, __context: Any) -> None:
        if (self.path is None) == (self.hub is None):
            raise ValueError("a data source needs exactly one of 'path' or 'hub'")


def default_sources() -> list[DataSource]:
    rows = [
        ("conll2013/train.jsonl", "split"),
        ("cweb/dev.jsonl", "split"),
        ("gmeg/dev.jsonl", "split"),
        ("jfleg/dev.jsonl", "dev"),
        ("iterater/train.jsonl", "train"),
        ("iterater/dev.jsonl", "dev"),
        ("asset/dev.jsonl", "split"),
        ("turkcorpus/dev.jsonl", "split"),
        ("wnc_sample/train.jsonl", "split"),
        ("stsb/train.jsonl", "train"),
        ("stsb/dev.jsonl", "dev"),
        ("mrpc/train.jsonl", "train"),
        ("mrpc/dev.jsonl", "dev"),
        ("alpaca_gpt4_demo/train.jsonl", "train"),
    ]
    return [DataSource(path=p, role=r) for p, r in rows]


def default_data_dir() -> Path:
    """The data folder when none is named: $EDGEWRITE_DATA, else ../shared/data (beside a clone)."""
    import os

    if env := os.environ.get("EDGEWRITE_DATA"):
        if not Path(env).is_dir():
            raise EdgewriteError(f"EDGEWRITE_DATA={env} is not a folder; point it at a data folder like shared/data")
        return Path(env)
    for folder in (Path("../shared/data"), Path(__file__).resolve().parents[2] / "shared" / "data"):
        if folder.is_dir():
            return folder
    raise EdgewriteError(
        "no data folder: set EDGEWRITE_DATA to a folder in the layout of shared/data, or put it at ../shared/data"
    )


class CustomTask(_Strict):
    """A task beyond the seven: data in ``<data_dir>/<name>/{train,dev}.jsonl`` (rows with this task name)."""

    name: str
    instructions: list[str] = Field(min_length=1)
    unit: Literal["sentence", "paragraph"] = "sentence"
    metric: Literal["sari", "gleu", "exact_match", "ibleu"] = "sari"


class DataConfig(_Strict):
    custom_tasks: list[CustomTask] = Field(default_factory=list, description="tasks beyond the seven")
    data_dir: str = Field(
        default_factory=lambda: os.environ.get("EDGEWRITE_DATA") or "../shared/data",
        description="default: $EDGEWRITE_DATA, else ../shared/data",
    )
    sources: list[DataSource] = Field(default_factory=default_sources)
    tasks: list[str] = Field(default_factory=lambda: list(TASK_NAMES))
    train_per_task: int | None = Field(default=None, ge=1, description="cap on training rows per task")
    dev_per_task: int | None = Field(default=200, ge=1, description="cap on dev rows per task")
    task_weights: dict[str, float] = Field(default_factory=dict, description="multiplies train_per_task")
    general: int = Field(default=0, ge=0, description="general-instruction rows (Alpaca) to mix in")
    dev_fraction: float = Field(default=0.1, gt=0, lt=1)
    prompt_style: Literal["chat", "chat-nosystem", "alpaca"] = "chat"
    max_chars: int = Field(default=1200, ge=16, description="drop rows whose source or target is longer")
    synthetic_errors: int = Field(
        default=0,
        ge=0,
        description="rows of synthetic learner errors (noisy -> clean) added to each of grammar and fluency",
    )
    max_unchanged_fraction: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="cap on training rows whose reference equals the source, as a share of a task's rows",
    )

    @model_validator(mode="before")
    @classmethod
    def _register_custom_tasks(cls, data: Any) -> Any:
        """Custom tasks are known before the sources and task lists that name them are checked; without an
        explicit ``tasks`` list, the data holds the seven and every custom one."""
        if not isinstance(data, dict) or not data.get("custom_tasks"):
            return data
        from edgewrite.tasks import register_task

        names = []
        for spec in data["custom_tasks"]:
            if not isinstance(spec, dict) or "name" not in spec:
                raise ValueError("each custom_tasks entry needs a name and its instructions")
            try:
                register_task(**{k: v for k, v in spec.items() if k in ("name", "instructions", "unit", "metric")})
            except (EdgewriteError, TypeError) as e:
                raise ValueError(str(e)) from e
            names.append(spec["name"])
        if "tasks" not in data:
            data = {**data, "tasks": [*TASK_NAMES, *names]}
        return data

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if t not in TASKS]
        if bad:
            raise ValueError(f"unknown task(s) {bad} (tasks: {', '.join(TASKS)}; or declare it in custom_tasks)")
        return v

    @field_validator("task_weights")
    @classmethod
    def _known_weight_tasks(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [t for t in v if t not in TASKS]
        if bad:
            raise ValueError(f"unknown task(s) {bad} in task_weights")
        return v


class TrainConfig(_Strict):
    method: Literal["lora", "full"] = "lora"
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    # 0 as in PEFT, Unsloth and LLaMA-Factory: the dropout masks cost 1.2-1.4x in CPU step time and moved
    # no dev score (experiments/recipe_search.py, no-lora-dropout)
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    lora_targets: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = Field(default=-1, description="overrides epochs when > 0")
    batch_size: int = Field(default=8, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    lr: float = Field(default=2e-4, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    scheduler: str = "cosine"
    max_length: int = Field(default=256, ge=16)
    bf16: Literal["auto"] | bool = "auto"  # auto: on where CUDA or the CPU (AMX/AVX-512) has bf16
    group_by_length: bool = True
    gradient_checkpointing: bool = False
    save_steps: int = Field(default=50, ge=1)
    logging_steps: int = Field(default=5, ge=1)
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (default: all cores)")
    edit_weight: float = Field(
        default=1.0,
        ge=1.0,
        description="loss weight of answer tokens that change the input (edit-weighted MLE); 1 = plain loss",
    )
    answer_only_logits: bool = Field(
        default=True, description="compute the LM head and loss only where a label is (the answer tokens)"
    )
    # Selection on dev: every eval_steps, generate on a fixed seeded dev subset (eval_rows per task, the
    # task's headline set) with the same code as `edgewrite eval`; each checkpoint replaces the kept one
    # unless it is significantly worse on those rows (paired bootstrap of the mean headline score): the last
    # one is saved unless an earlier one was clearly better.
    eval_steps: int | None = Field(default=None, ge=1, description="score on dev every N steps (None: no selection)")
    eval_rows: int = Field(default=40, ge=1, description="dev rows per task for selection")
    eval_batch_size: int = Field(default=16, ge=1)
    early_stopping: int | None = Field(
        default=None, ge=1, description="stop after N evaluations significantly worse than the kept checkpoint"
    )


class QuantizeSpec(_Strict):
    format: Literal["gguf", "gptq", "onnx"] = "gguf"
    bits: int = 4
    type: str | None = None  # an explicit llama.cpp type (gguf only)
    group_size: int | None = None
    samples: int = Field(default=256, ge=1)
    rounding: str = (
        "nearest"  # gguf: nearest, imatrix, imatrix:FILE, autoround[:STEPS] or FILE, as `quantize --rounding`
    )
    tensor_types: list[str] = Field(default_factory=list)  # gguf: PATTERN=TYPE, as `quantize --tensor-type`

    @field_validator("rounding")
    @classmethod
    def _rounding(cls, v: str) -> str:
        from edgewrite.quantize.settings import Rounding

        try:
            return str(Rounding.parse(v))
        except EdgewriteError as e:
            raise ValueError(str(e).removeprefix("--rounding ")) from e


class Recipe(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    model: str = "default"
    out_dir: str = "runs"
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    quantize: list[QuantizeSpec] = Field(default_factory=list, description="exports made by `edgewrite run`")

    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name


def _unwrap(annotation: Any) -> Any:
    """The BaseModel or dict type inside an Optional/Union annotation, else the annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _unwrap(arg)
    return annotation


def _check_key(model: type[BaseModel], dotted: str) -> None:
    current: Any = model
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                where = ".".join(parts[:i]) or "the recipe"
                known = ", ".join(current.model_fields)
                raise EdgewriteError(f"--set {dotted}: {where} has no key '{part}' (keys: {known})")
            current = _unwrap(current.model_fields[part].annotation)
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            raise EdgewriteError(f"--set {dotted}: '{'.'.join(parts[:i])}' is not a section")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        if "=" not in item:
            raise EdgewriteError(f"--set '{item}' is not of the form key=value (e.g. train.lr=1e-4)")
        key, value = item.split("=", 1)
        key = key.strip()
        _check_key(Recipe, key)
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise EdgewriteError(f"--set {key}: '{part}' is not a section in this recipe")
        node[parts[-1]] = yaml.safe_load(value) if value != "" else None
    return raw


def _format_validation(source: str, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {where}: {msg}{more}"


def recipe_from_overrides(overrides: list[str] | None, name: str = "adhoc") -> Recipe:
    """A recipe of defaults with ``--set`` overrides (for commands used without a recipe file)."""
    try:
        return Recipe.model_validate(apply_overrides({"name": name}, overrides or []))
    except ValidationError as e:
        raise EdgewriteError(_format_validation("--set", e)) from e


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise EdgewriteError(f"recipe {path} does not exist; see recipes/ for examples")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise EdgewriteError(f"recipe {path} is not UTF-8 text (byte {e.start}); give a YAML file") from e
    except yaml.YAMLError as e:
        raise EdgewriteError(f"recipe {path} is not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(raw, dict):
        raise EdgewriteError(f"recipe {path} must be a mapping of keys to values")
    raw = apply_overrides(raw, overrides or [])
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        raise EdgewriteError(_format_validation(f"recipe {path}", e)) from e
