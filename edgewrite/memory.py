"""What a tune needs in memory per GPU, before it starts: weights, gradients, optimizer states and
activations at the recipe's batch and length, for LoRA or full fine-tuning, on one GPU or sharded by FSDP
across several (`tune --dry-run` prints it; `tune` refuses a plan the GPUs present cannot hold).

The terms are the standard ones (fp32 master weights, gradients and Adam's two moments: 16 bytes per
trained parameter, as in the ZeRO paper; Korthikanti et al.'s 34·s·b·h bytes of activations per
transformer layer at 16 bits, one layer's worth plus the layer inputs under gradient checkpointing).
They are estimates, good to the tens of percent, meant to say "this will not fit on a 24 GB card" before
an hour of setup, not to the last megabyte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError

GIB = 2**30
CUDA_OVERHEAD = 1.0 * GIB  # CUDA context, allocator slack, NCCL buffers: measured 0.6-1.2 GiB on typical cards

# Hub ids that the GPU recipes name, with their shapes, for a machine that cannot read the hub: the
# config.json values of those repositories (vocab, hidden, intermediate, layers, heads, kv heads, tied).
KNOWN_SHAPES: dict[str, tuple[int, ...]] = {
    "huggyllama/llama-7b": (32000, 4096, 11008, 32, 32, 32, False),
    "meta-llama/Llama-2-7b-hf": (32000, 4096, 11008, 32, 32, 32, False),
    "meta-llama/Meta-Llama-3-8B": (128256, 4096, 14336, 32, 32, 8, False),
    "meta-llama/Llama-3.1-8B": (128256, 4096, 14336, 32, 32, 8, False),
    "meta-llama/Llama-3.2-1B": (128256, 2048, 8192, 16, 32, 8, True),
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": (32000, 2048, 5632, 22, 32, 4, False),
    "HuggingFaceTB/SmolLM2-135M-Instruct": (49152, 576, 1536, 30, 9, 3, True),
    "HuggingFaceTB/SmolLM2-360M-Instruct": (49152, 960, 2560, 32, 15, 5, True),
    # Gemma 3 270M (the optional `gemma3-270m` model): heads of 256, wider than hidden / heads
    "google/gemma-3-270m": (262144, 640, 2048, 18, 4, 1, True, 256),
    "gemma3-270m": (262144, 640, 2048, 18, 4, 1, True, 256),
}


@dataclass(frozen=True)
class Shape:
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    tied: bool
    head_dim: int | None = None  # where the config gives it (hidden / heads otherwise)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Shape:
        try:
            heads = config["num_attention_heads"]
            return cls(
                config["vocab_size"],
                config["hidden_size"],
                config["intermediate_size"],
                config["num_hidden_layers"],
                heads,
                config.get("num_key_value_heads") or heads,
                bool(config.get("tie_word_embeddings", False)),
                config.get("head_dim"),
            )
        except KeyError as e:
            raise EdgewriteError(f"the model's config.json has no {e}; a LLaMA-architecture config is needed") from e

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each projection of one decoder layer, by its module name."""
        head = self.head_dim or self.hidden // self.heads
        return {
            "q_proj": (self.hidden, self.heads * head),
            "k_proj": (self.hidden, self.kv_heads * head),
            "v_proj": (self.hidden, self.kv_heads * head),
            "o_proj": (self.heads * head, self.hidden),
            "gate_proj": (self.hidden, self.intermediate),
            "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }

    @property
    def params(self) -> int:
        per_layer = sum(i * o for i, o in self.linear_shapes().values()) + 2 * self.hidden
        embed = self.vocab * self.hidden
        return embed * (1 if self.tied else 2) + self.layers * per_layer + self.hidden

    def lora_params(self, r: int, targets: list[str]) -> int:
        shapes = self.linear_shapes()
        return self.layers * sum(r * (shapes[t][0] + shapes[t][1]) for t in targets if t in shapes)


def model_shape(ref: str) -> Shape:
    """The shape of a model reference: a local folder's (or a resolved model's) config.json, else the
    shape of a known hub id."""
    path = Path(ref)
    if (path / "config.json").is_file():
        return Shape.from_config(json.loads((path / "config.json").read_text()))
    if ref in KNOWN_SHAPES:
        return Shape(*KNOWN_SHAPES[ref])
    from edgewrite.models import resolve_model

    info = resolve_model(ref)
    return Shape.from_config(json.loads((info.path / "config.json").read_text()))


@dataclass(frozen=True)
class Plan:
    method: str
    gpus: int
    sharded: bool
    params: int
    trainable: int
    weights: float
    gradients: float
    optimizer: float
    activations: float
    overhead: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead

    def lines(self) -> list[str]:
        where = f"{self.gpus} GPUs, FSDP full shard" if self.sharded else "1 GPU"
        rows = [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("optimizer states", self.optimizer),
            ("activations", self.activations),
            ("CUDA context and slack", self.overhead),
        ]
        return [
            f"memory plan per GPU ({self.method}, {where}; {self.params / 1e9:.2f} B parameters, "
            f"{self.trainable / 1e6:.1f} M trainable):",
            *(f"  {name:<24}{value / GIB:8.1f} GiB" for name, value in rows),
            f"  {'total':<24}{self.total / GIB:8.1f} GiB",
        ]


def plan(shape: Shape, train: Any, gpus: int = 1, sharded: bool = False, bf16: bool = True) -> Plan:
    """Bytes per GPU that ``train`` (a `recipe.TrainConfig`) needs on CUDA for a model of ``shape``."""
    p = shape.params
    n = gpus if sharded and gpus > 1 else 1
    if train.method == "full":
        trainable = p
        weights = 4 * p / n  # fp32 master weights (bf16 autocast computes from them)
        gradients = 4 * p / n
        optimizer = 8 * p / n  # Adam's two fp32 moments
        if sharded and n > 1:
            weights += (2 if bf16 else 4) * _largest_layer(shape)  # one layer gathered at a time
    else:
        trainable = shape.lora_params(train.lora_r, train.lora_targets)
        weights = (2 if bf16 else 4) * p + 4 * trainable  # frozen base in bf16, adapter in fp32
        gradients = 4 * trainable
        optimizer = 8 * trainable
    b, s, h = train.batch_size, train.max_length, shape.hidden
    # 16-bit activations of one decoder layer; the 5·a·s²·b of attention scores is not held: PyTorch's SDPA
    # (transformers' default attention) never materializes them
    per_layer = 34 * s * b * h
    if not bf16:
        per_layer *= 2
    if train.gradient_checkpointing:
        activations = shape.layers * 2 * s * b * h + per_layer
    else:
        activations = shape.layers * per_layer
    logit_rows = b * s if not getattr(train, "answer_only_logits", False) else b * s // 2
    activations += 2 * 4 * logit_rows * shape.vocab  # fp32 logits and their gradient
    return Plan(
        train.method, gpus, sharded and n > 1, p, trainable, weights, gradients, optimizer, activations, CUDA_OVERHEAD
    )


def _largest_layer(shape: Shape) -> int:
    return max(sum(i * o for i, o in shape.linear_shapes().values()), shape.vocab * shape.hidden)


def accelerate_gpus(config_file: Path | None) -> tuple[int, bool]:
    """GPUs and FSDP sharding from an accelerate config file (num_processes, distributed_type)."""
    if config_file is None or not config_file.is_file():
        return 1, False
    import yaml

    data = yaml.safe_load(config_file.read_text()) or {}
    gpus = int(data.get("num_processes") or 1)
    sharded = data.get("distributed_type") == "FSDP" and (data.get("fsdp_config") or {}).get(
        "fsdp_sharding_strategy", "FULL_SHARD"
    ) in ("FULL_SHARD", 1, "1")
    return gpus, sharded


def check_fits(p: Plan, free: list[int]) -> None:
    """Refuse a plan that the GPUs present cannot hold: one line with what it needs and what to do."""
    if not free:
        return
    if len(free) < p.gpus:
        raise EdgewriteError(
            f"the recipe plans {p.gpus} GPUs and {len(free)} are visible; launch it on a machine with "
            f"{p.gpus} or change the accelerate config's num_processes"
        )
    smallest = min(free[: p.gpus])
    if p.total > smallest:
        hint = (
            "set train.gradient_checkpointing=true, lower train.batch_size (raise grad_accum) or train.max_length"
            if not p.sharded
            else "add GPUs, turn on gradient checkpointing, or lower train.batch_size / max_length"
        )
        if p.method == "full" and not p.sharded:
            hint = "use train.method=lora, or shard the full tune with accelerate (FSDP) over more GPUs; or " + hint
        raise EdgewriteError(
            f"this tune needs about {p.total / GIB:.1f} GiB per GPU and the smallest free GPU has "
            f"{smallest / GIB:.1f} GiB; {hint} (`edgewrite tune --dry-run` shows the plan)"
        )


def free_gpu_memory() -> list[int]:
    """Free bytes on each visible CUDA device (empty without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
