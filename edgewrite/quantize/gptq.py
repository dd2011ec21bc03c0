"""GPTQ through GPT-QModel (the maintained successor of the archived AutoGPTQ), CPU or CUDA.

Calibration text is a seeded sample of the training rows, formatted by the same prompt builder as
training, so the quantizer sees the activations the model will see in use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError


def import_gptqmodel() -> Any:
    # gptqmodel sizes its CPU worker pools from the core count; on 2 cores the default (1) is below
    # the model-loader pool's fixed 2 and it refuses to start (STACK.md section 5).
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(max(2, os.cpu_count() or 2)))
    from edgewrite import quiet_gptqmodel

    quiet_gptqmodel()
    try:
        import gptqmodel
    except ImportError as e:
        raise EdgewriteError("GPTQ needs GPT-QModel: pip install gptqmodel==7.6.0 (or re-run ./install.sh)") from e
    return gptqmodel


def default_group_size(model_dir: Path) -> int:
    """The largest of 128/64/32 that divides every linear layer's input width."""
    config = json.loads((model_dir / "config.json").read_text())
    widths = {config["hidden_size"], config["intermediate_size"]}
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    widths.add(config["num_attention_heads"] * head_dim)
    for g in (128, 64, 32):
        if all(w % g == 0 for w in widths):
            return g
    raise EdgewriteError(f"no GPTQ group size of 128/64/32 divides the layer widths {sorted(widths)}")


def export(
    model_dir: Path,
    out: Path,
    bits: int,
    group_size: int,
    rows: list[dict],
    tokenizer: Any,
    style: str,
    stop: str,
    device: str,
) -> dict[str, Any]:
    gptqmodel = import_gptqmodel()
    from edgewrite.quantize.calibration import calibration_texts

    texts = calibration_texts(rows, tokenizer, style, stop)
    if not texts:
        raise EdgewriteError("no calibration rows")
    # GPT-QModel writes per-layer logs into ./logs of the working directory; they belong to the artifact.
    from gptqmodel.looper import loop_processor

    loop_processor._PROJECT_LOG_DIR = out / "logs"
    config = gptqmodel.QuantizeConfig(bits=bits, group_size=group_size)
    model = gptqmodel.GPTQModel.load(str(model_dir), config, device=device)
    model.quantize(texts, batch_size=4, tokenizer=tokenizer)
    model.save(str(out))
    return {
        "bits": bits,
        "group_size": group_size,
        "calibration_rows": len(texts),
        "calibration_tokens": sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts),
    }


def read_back(out: Path, details: dict[str, Any]) -> dict[str, Any]:
    config = json.loads((out / "config.json").read_text())
    if "quantization_config" not in config:
        raise EdgewriteError(f"{out} has no quantization_config after GPTQ export")
    gen = json.loads((out / "generation_config.json").read_text()) if (out / "generation_config.json").is_file() else {}
    eos = gen.get("eos_token_id", config.get("eos_token_id"))
    template = (out / "chat_template.jinja").read_text() if (out / "chat_template.jinja").is_file() else None
    return {
        "chat_template": template,
        "stop_ids": eos if isinstance(eos, list) else [eos],
        "quant_method": config["quantization_config"].get("quant_method"),
    }
