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
            "onnxruntime_genai.models.builder",
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
    config = json.loads((out / "genai_config.json").read_text())
    return {
        "onnx_file": config["model"]["decoder"]["filename"],
        "precision": precision,
        "execution_provider": "cuda" if device == "cuda" else "cpu",
    }


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
