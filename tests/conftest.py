"""Shared fixtures: a hermetic EDGEWRITE_HOME, the embedded model's tokenizer, a tiny random Llama,
and a small data folder in the layout of shared/data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

TASK_ROWS = {
    "grammar": [
        ("She go to school every days .", "She goes to school every day ."),
        ("He do n't like apples .", "He does n't like apples ."),
        ("I has two cat .", "I have two cats ."),
        ("They was happy yesterday .", "They were happy yesterday ."),
    ],
    "fluency": [
        ("Me and him goes to the store.", "He and I go to the store."),
        ("The informations is useful.", "The information is useful."),
        ("She have been there since two years.", "She has been there for two years."),
    ],
    "clarity": [
        ("The thing that is the problem is the cost.", "The problem is the cost."),
        ("In order to be able to win, we must train.", "To win, we must train."),
        ("Due to the fact that it rained, we left.", "Because it rained, we left."),
    ],
    "coherence": [
        ("It rained. We stayed inside. However it was fun.", "It rained, so we stayed inside. It was fun."),
        ("He studied hard. He failed.", "He studied hard, but he failed."),
        ("The cat slept. Also the dog.", "The cat slept, and so did the dog."),
    ],
    "simplification": [
        (
            "The committee deliberated extensively prior to reaching a verdict.",
            "The committee talked a lot before deciding.",
        ),
        ("Precipitation is anticipated tomorrow.", "Rain is expected tomorrow."),
        ("He endeavoured to ascertain the truth.", "He tried to find the truth."),
    ],
    "neutralization": [
        ("the brilliant mayor won again .", "the mayor won again ."),
        ("the notorious band released an album .", "the band released an album ."),
        ("his excellent book sold well .", "his book sold well ."),
    ],
    "paraphrase": [
        ("The meeting was postponed until Friday.", "The meeting was moved to Friday."),
        ("He bought a new car last week.", "Last week he purchased a new car."),
        ("Prices rose sharply in May.", "In May, prices increased steeply."),
    ],
}


@pytest.fixture(scope="session", autouse=True)
def _hermetic_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Reuse a converted default model across test sessions only if the caller asks for it.
    home = os.environ.get("EDGEWRITE_TEST_HOME") or str(tmp_path_factory.mktemp("edgewrite-home"))
    os.environ["EDGEWRITE_HOME"] = home
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct, dequantized once into the session's EDGEWRITE_HOME."""
    from edgewrite.models import resolve_model

    return resolve_model("default").path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, default_model_dir: Path) -> Path:
    """A 2-layer random Llama with the embedded model's real tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = AutoTokenizer.from_pretrained(default_model_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_base(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama as an untuned base model (`edgewrite bench --base`): a bench's base row costs seconds, not
    the embedded 135M model's minute."""
    import shutil

    from edgewrite.artifacts import write_manifest

    out = tmp_path_factory.mktemp("tiny-base") / "tiny"
    shutil.copytree(tiny_model_dir, out)
    write_manifest(out, "base", fingerprint="tiny-base", format="safetensors", stop_token="<|im_end|>")
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def tiny_data_dir(tmp_path: Path) -> Path:
    """Each task in a train and a dev file, plus a general-instruction file."""
    root = tmp_path / "data"
    for task, pairs in TASK_ROWS.items():
        rows = [{"task": task, "source": s, "references": [r], "id": f"{task}-{i}"} for i, (s, r) in enumerate(pairs)]
        write_jsonl(root / task / "train.jsonl", rows[:-1])
        write_jsonl(root / task / "dev.jsonl", rows[-1:])
    write_jsonl(
        root / "general" / "train.jsonl",
        [
            {
                "task": "general",
                "source": "Name a colour.",
                "references": ["Blue."],
                "id": "g-0",
                "instruction": "Name a colour.",
                "input": "",
            },
        ],
    )
    return root


def tiny_sources(root: Path) -> list[dict]:
    sources = []
    for task in TASK_ROWS:
        sources += [{"path": f"{task}/train.jsonl", "role": "train"}, {"path": f"{task}/dev.jsonl", "role": "dev"}]
    sources.append({"path": "general/train.jsonl", "role": "train"})
    return sources


@pytest.fixture()
def tiny_recipe(tmp_path: Path, tiny_data_dir: Path, tiny_model_dir: Path) -> Path:
    """A recipe that tunes the tiny model for 4 steps on the tiny data, into tmp_path/runs."""
    import yaml

    recipe = {
        "name": "tiny",
        "model": str(tiny_model_dir),
        "out_dir": str(tmp_path / "runs"),
        "data": {"data_dir": str(tiny_data_dir), "sources": tiny_sources(tiny_data_dir), "general": 1},
        "train": {
            "max_steps": 4,
            "batch_size": 2,
            "save_steps": 2,
            "logging_steps": 1,
            "lora_r": 4,
            "lora_alpha": 8,
            "lr": 1e-3,
            "max_length": 128,
            "bf16": False,
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


EXPORTS = {
    "gguf-f16": ("gguf", 16),
    "gguf-q8": ("gguf", 8),
    "gguf-q4": ("gguf", 4),
    "onnx-fp32": ("onnx", 32),
    "onnx-int4": ("onnx", 4),
    "gptq-4bit": ("gptq", 4),
}


@pytest.fixture(scope="session")
def tiny_exports(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny Llama in every format edgewrite exports (GPTQ calibrated on a tiny data artifact)."""
    from edgewrite.data import build_dataset
    from edgewrite.quantize import quantize
    from edgewrite.recipe import DataConfig

    root = tmp_path_factory.mktemp("exports")
    raw = root / "raw"
    for task, pairs in TASK_ROWS.items():
        rows = [{"task": task, "source": s, "references": [r], "id": f"{task}-{i}"} for i, (s, r) in enumerate(pairs)]
        write_jsonl(raw / task / "train.jsonl", rows)
    sources = [{"path": f"{task}/train.jsonl", "role": "train"} for task in TASK_ROWS]
    build_dataset(DataConfig(data_dir=str(raw), sources=sources), root / "data")
    return {
        name: quantize(str(tiny_model_dir), fmt, bits, out=root / name, calibration=root / "data", samples=16)[0]
        for name, (fmt, bits) in EXPORTS.items()
    }


@pytest.fixture(scope="session")
def default_gguf(default_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model as a Q8_0 GGUF artifact (llama.cpp's converter and quantizer)."""
    from edgewrite.quantize import quantize

    path, _ = quantize(str(default_model_dir), "gguf", 8, tmp_path_factory.mktemp("gguf") / "q8")
    return path


@pytest.fixture(scope="session")
def stopping_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny Llama fine-tuned to answer every request "Fine." and then stop at <|im_end|>, merged and
    exported to GGUF and ONNX: a model whose stopping (and cut-off) can be observed in every runtime."""
    import yaml

    from edgewrite.pipeline import run_recipe
    from edgewrite.quantize import quantize
    from edgewrite.recipe import load_recipe

    root = tmp_path_factory.mktemp("stopping")
    for task, pairs in TASK_ROWS.items():
        rows = [
            {"task": task, "source": s, "references": ["Fine."], "id": f"{task}-{i}"} for i, (s, _) in enumerate(pairs)
        ]
        write_jsonl(root / "data" / task / "train.jsonl", rows * 3)
    recipe = {
        "name": "stopping",
        "model": str(tiny_model_dir),
        "out_dir": str(root / "runs"),
        "data": {
            "data_dir": str(root / "data"),
            "sources": [{"path": f"{t}/train.jsonl", "role": "train"} for t in TASK_ROWS],
            "max_unchanged_fraction": 1.0,
        },
        "train": {"method": "full", "max_steps": 120, "batch_size": 8, "lr": 3e-3, "max_length": 128, "bf16": False},
    }
    (root / "stopping.yaml").write_text(yaml.safe_dump(recipe))
    merged = run_recipe(load_recipe(root / "stopping.yaml"), quiet=True, log=lambda *_: None)["merge"]
    return {
        "hf": merged,
        "gguf": quantize(str(merged), "gguf", 8)[0],
        "onnx": quantize(str(merged), "onnx", 32)[0],
    }


# Tiers: `pytest -m "not slow"` runs the unit tests and the integration tests that need no model export
# (a few minutes); the full run adds every test that tunes, merges, exports or serves a model.
FAST_INTEGRATION = {"test_check.py", "test_lsp.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if path.parent.name == "integration" and path.name not in FAST_INTEGRATION:
            item.add_marker(pytest.mark.slow)
