"""A second model family through the whole pipeline: a tiny Gemma 3 (QK-norm, sliding-window and global
layers, scaled embedding, the (1 + w) RMSNorm that llama.cpp's converter shifts) with no chat template, as
Gemma 3 270M's GGUF has none. Tuned in the test to answer every request "Fine." and stop at its EOS, under
the Writing-Alpaca prompt; its GGUF and ONNX exports must give the same answer and stop on the same token,
so the prompt style and the stop token survive every export of this family as they do for SmolLM2's."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgewrite.artifacts import write_manifest
from tests.conftest import TASK_ROWS, write_jsonl

CLI = [sys.executable, "-m", "edgewrite.cli"]


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, input=stdin, timeout=900)


@pytest.fixture(scope="module")
def tiny_gemma_dir(tmp_path_factory: pytest.TempPathFactory, default_model_dir: Path) -> Path:
    """A 2-layer random Gemma 3 (one sliding-window layer, one global) with the embedded model's tokenizer
    minus its chat template: a base model of the second family."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig, GenerationConfig

    out = tmp_path_factory.mktemp("tiny-gemma3")
    tok = AutoTokenizer.from_pretrained(default_model_dir)
    tok.chat_template = None
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = Gemma3ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    assert not (out / "chat_template.jinja").exists()
    return out


def _recipe(root: Path, model: Path, style: str, name: str) -> Path:
    for task, pairs in TASK_ROWS.items():
        rows = [
            {"task": task, "source": s, "references": ["Fine."], "id": f"{task}-{i}"} for i, (s, _) in enumerate(pairs)
        ]
        write_jsonl(root / "data" / task / "train.jsonl", rows * 3)
    recipe = {
        "name": name,
        "model": str(model),
        "out_dir": str(root / "runs"),
        "data": {
            "data_dir": str(root / "data"),
            "sources": [{"path": f"{t}/train.jsonl", "role": "train"} for t in TASK_ROWS],
            "max_unchanged_fraction": 1.0,
            "prompt_style": style,
        },
        "train": {"method": "full", "max_steps": 120, "batch_size": 8, "lr": 3e-3, "max_length": 128, "bf16": False},
        "quantize": [{"format": "gguf", "bits": 8}, {"format": "onnx", "bits": 32}],
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.slow
def test_a_gemma3_base_model_goes_through_tune_merge_and_every_export_keeping_its_stop(
    tiny_gemma_dir: Path, tmp_path: Path
) -> None:
    from edgewrite.quantize.gguf_reader import FastGGUFReader as GGUFReader

    done = _cli("run", str(_recipe(tmp_path, tiny_gemma_dir, "alpaca", "gemma")))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = tmp_path / "runs" / "gemma"
    merged = json.loads((runs / "merged" / "manifest.json").read_text())
    assert merged["prompt_style"] == "alpaca" and merged["stop_token"] == "<|im_end|>", merged
    assert json.loads((runs / "merged" / "config.json").read_text())["model_type"] == "gemma3_text"
    gguf_dir = runs / "gguf-q8_0"
    reader = GGUFReader(next(gguf_dir.glob("*.gguf")))
    assert reader.fields["general.architecture"].contents() == "gemma3"
    eos = reader.fields["tokenizer.ggml.eos_token_id"].contents()
    assert reader.fields["tokenizer.ggml.tokens"].contents(eos) == "<|im_end|>"
    doc = tmp_path / "doc.md"
    doc.write_text("# Notes\n\nShe go to school. He dont like it.\n", encoding="utf-8")
    for export in (gguf_dir, runs / "onnx-fp32", runs / "merged"):
        out = tmp_path / f"{export.name}.md"
        done = _cli("assist", str(doc), "-m", str(export), "--task", "grammar", "--out", str(out), "-q")
        assert done.returncode == 0, (export.name, done.stderr[-2000:])
        assert out.read_text(encoding="utf-8") == "# Fine\n\nFine. Fine.\n", export.name
    data = tmp_path / "dev"
    write_jsonl(
        data / "stsb" / "dev.jsonl", [{"task": "paraphrase", "source": "A b c.", "references": ["A c."], "id": "s0"}]
    )
    done = _cli("eval", str(gguf_dir), "--tasks", "paraphrase", "--data-dir", str(data), "--out", str(tmp_path / "ev"))
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads((tmp_path / "ev" / "rows.jsonl").read_text().splitlines()[0])
    assert row["output"] == "Fine." and row["finish"] == "stop", row
    # bench --base: the untuned row is this family's base, which has no chat template and names no prompt
    # style: it is prompted as the Writing-Alpaca paper did
    base = tmp_path / "gemma-base"
    shutil.copytree(tiny_gemma_dir, base)
    write_manifest(base, "base", fingerprint="tiny-gemma", format="safetensors", stop_token="<|im_end|>")
    bench = tmp_path / "bench"
    args = ["--tasks", "paraphrase", "--data-dir", str(data), "--out", str(bench), "--latency-rows", "1", "-q"]
    done = _cli("bench", str(gguf_dir), "--base", str(base), *args)
    assert done.returncode == 0, done.stderr[-2000:]
    cells = {c["label"]: c for c in json.loads((bench / "bench.json").read_text())["cells"]}
    assert cells["base fp32 (untuned)"]["path"] == str(base) and cells["base fp32 (untuned)"]["rows"] == 1, cells


def test_a_chat_prompt_on_a_model_without_a_chat_template_is_one_line_before_training(
    tiny_gemma_dir: Path, tmp_path: Path
) -> None:
    done = _cli("run", str(_recipe(tmp_path, tiny_gemma_dir, "chat-nosystem", "nochat")))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "prompt_style: alpaca" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert (
        not (tmp_path / "runs" / "nochat" / "adapter").exists() and not (tmp_path / "runs" / "nochat" / "full").exists()
    )
