"""The memory a tune needs per GPU (`edgewrite.memory`), printed by `tune --dry-run` for every recipe and
checked by `tune` against the GPUs present before anything big is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgewrite.errors import EdgewriteError
from edgewrite.memory import GIB, KNOWN_SHAPES, Plan, Shape, accelerate_gpus, check_fits, model_shape, plan
from edgewrite.recipe import TrainConfig
from edgewrite.train import load_dtype

ROOT = Path(__file__).resolve().parents[2]


def test_parameter_counts_are_those_of_the_published_models() -> None:
    assert Shape(*KNOWN_SHAPES["HuggingFaceTB/SmolLM2-135M-Instruct"]).params == 134_515_008
    assert Shape(*KNOWN_SHAPES["huggyllama/llama-7b"]).params == 6_738_415_616
    assert Shape(*KNOWN_SHAPES["TinyLlama/TinyLlama-1.1B-Chat-v1.0"]).params == 1_100_048_384
    assert Shape(*KNOWN_SHAPES["meta-llama/Llama-3.2-1B"]).params == 1_235_814_400


def test_lora_trainable_parameters_are_what_peft_trains(tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    config = TrainConfig(lora_r=8)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=8, lora_alpha=16, target_modules=config.lora_targets, task_type="CAUSAL_LM"),
    )
    shape = model_shape(str(tiny_model_dir))
    assert shape.lora_params(8, config.lora_targets) == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert shape.params == sum(p.numel() for p in model.base_model.model.parameters() if not p.requires_grad)


def test_full_tuning_holds_16_bytes_a_parameter_spread_over_the_shards() -> None:
    shape = Shape(*KNOWN_SHAPES["huggyllama/llama-7b"])
    full = TrainConfig(method="full", batch_size=4, max_length=512, gradient_checkpointing=True)
    one = plan(shape, full)
    assert one.weights + one.gradients + one.optimizer == 16 * shape.params
    eight = plan(shape, full, gpus=8, sharded=True)
    assert eight.sharded and eight.gradients == one.gradients / 8 and eight.optimizer == one.optimizer / 8
    assert eight.total < one.total / 4  # a 7B full tune is an FSDP job: ~110 GiB on one GPU, ~15 on each of 8
    assert one.total > 100 * GIB and eight.total < 24 * GIB


def test_lora_keeps_the_frozen_base_in_bf16_and_checkpointing_cuts_activations() -> None:
    shape = Shape(*KNOWN_SHAPES["huggyllama/llama-7b"])
    lora = TrainConfig(method="lora", batch_size=8, max_length=512)
    p = plan(shape, lora)
    trainable = shape.lora_params(16, lora.lora_targets)
    assert p.weights == 2 * shape.params + 4 * trainable and p.optimizer == 8 * trainable
    assert plan(shape, lora, bf16=False).weights == 4 * shape.params + 4 * trainable
    checkpointed = plan(shape, lora.model_copy(update={"gradient_checkpointing": True}))
    assert checkpointed.activations < p.activations / 5
    bigger = plan(shape, lora.model_copy(update={"batch_size": 16}))
    assert bigger.activations == pytest.approx(2 * p.activations, rel=0.01)


def test_a_plan_the_gpus_cannot_hold_is_refused_with_what_to_do() -> None:
    p = Plan("lora", 1, False, 10, 1, 20 * GIB, 0, 0, 10 * GIB, GIB)
    check_fits(p, [])  # no GPU: nothing to check against
    check_fits(p, [40 * GIB])
    with pytest.raises(EdgewriteError, match=r"needs about 31.0 GiB per GPU .* has 24.0 GiB; set train.gradient"):
        check_fits(p, [24 * GIB])
    full = Plan("full", 8, True, 10, 10, 10 * GIB, 0, 0, 0, 0)
    with pytest.raises(EdgewriteError, match="plans 8 GPUs and 2 are visible"):
        check_fits(full, [80 * GIB] * 2)


def test_the_7b_recipe_s_launch_config_says_eight_gpus_sharded() -> None:
    assert accelerate_gpus(ROOT / "recipes" / "writing-alpaca-7b.accelerate.yaml") == (8, True)
    assert accelerate_gpus(None) == (1, False)


def test_the_base_loads_in_bf16_only_for_lora_on_cuda() -> None:
    assert load_dtype(TrainConfig(method="lora"), "cuda", True) == "bfloat16"
    assert load_dtype(TrainConfig(method="lora"), "cuda", False) == "float32"
    assert load_dtype(TrainConfig(method="full"), "cuda", True) == "float32"  # fp32 master weights
    assert load_dtype(TrainConfig(method="lora"), "cpu", True) == "float32"


@pytest.mark.parametrize(
    "recipe", sorted(p.name for p in (ROOT / "recipes").glob("*.yaml") if "accelerate" not in p.name)
)
def test_dry_run_prints_the_memory_plan_of_every_recipe(recipe: str, default_model_dir: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from edgewrite.cli import app

    monkeypatch.chdir(ROOT)
    done = CliRunner().invoke(app, ["tune", "--recipe", f"recipes/{recipe}", "--dry-run"])
    assert done.exit_code == 0, done.output
    out = done.output
    assert ("memory plan per GPU" in out and "total" in out) or "on CPU" in out, out
    if "alpaca-7b" in recipe:
        assert "full, 8 GPUs, FSDP full shard; 6.74 B parameters" in out and "accelerate launch" in out


def test_a_config_s_own_head_dim_sizes_the_attention_projections() -> None:
    config = {
        "vocab_size": 262144,
        "hidden_size": 640,
        "intermediate_size": 2048,
        "num_hidden_layers": 18,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 256,  # Gemma 3 270M: not hidden / heads (160)
        "tie_word_embeddings": True,
    }
    shape = Shape.from_config(config)
    assert shape.linear_shapes()["q_proj"] == (640, 1024) and shape.linear_shapes()["k_proj"] == (640, 256)
    # within its extra q/k and feed-forward norms (32,256) of the 268,098,176 transformers loads
    assert abs(shape.params - 268_098_176) < 40_000
    # the optional `gemma3-270m` model is planned from its known shape, without its package or a download
    from edgewrite.memory import model_shape

    assert model_shape("gemma3-270m") == model_shape("google/gemma-3-270m") == shape
