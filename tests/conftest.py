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
