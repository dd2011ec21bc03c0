"""ONNX through onnxruntime-genai's model builder (int4 / fp16 / fp32, CPU or CUDA provider)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError


def export(model_dir: Path, out: Path, precision: str, device: str) -> dict[str, Any]:
    try:
        import onnx_ir  # noqa: F401  (an undeclared dependency of the builder)
        import onnxruntime_genai  # noqa: F401
    except ImportError as e:
        raise EdgewriteError(
            f"ONNX export needs onnxruntime-genai and onnx-ir ({e.name} is missing): re-run ./install.sh"
        ) from e
    with tempfile.TemporaryDirectory(dir=out.parent) as cache:
        cmd = [
            sys.executable,
            "-m",
            "edgewrite.quantize.genai_builder",  # the builder itself, with a fix for Gemma 3's RoPE config
            "-i",
            str(model_dir),
            "-o",
            str(out),
            "-p",
            precision,
            "-e",
            "cuda" if device == "cuda" else "cpu",
            "-c",
            cache,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        raise EdgewriteError(f"onnxruntime-genai builder failed: {lines[-1] if lines else '(no output)'}")
    _drop_null_tokenizer_fields(out / "tokenizer_config.json")
    config = json.loads((out / "genai_config.json").read_text())
    return {
        "onnx_file": config["model"]["decoder"]["filename"],
        "precision": precision,
        "execution_provider": "cuda" if device == "cuda" else "cpu",
    }


def _drop_null_tokenizer_fields(path: Path) -> None:
    """onnxruntime-genai's tokenizer refuses a null string field ("type must be string, but is null"), which
    transformers writes for a tokenizer whose chat template was unset (a base model's); HF reads an absent key
    and a null one alike, so the nulls are dropped (written to a temporary name, then renamed)."""
    if not path.is_file():
        return
    config = json.loads(path.read_text())
    kept = {k: v for k, v in config.items() if v is not None}
    if kept != config:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n")
        tmp.replace(path)


def read_back(out: Path, details: dict[str, Any]) -> dict[str, Any]:
    config = json.loads((out / "genai_config.json").read_text())
    eos = config["model"].get("eos_token_id")
    template = None
    if (out / "chat_template.jinja").is_file():
        template = (out / "chat_template.jinja").read_text()
    return {
        "chat_template": template,
        "stop_ids": eos if isinstance(eos, list) else [eos],
        "context_length": config["model"].get("context_length"),
    }
