"""GGUF with tuned rounding: Intel's AutoRound (SignRound) in place of llama.cpp's round-to-nearest.

llama.cpp's quantizer rounds every weight to the nearest point of its 4-bit grid (an importance matrix
only weighs the error). AutoRound instead learns, block by block on calibration text, a rounding offset
and a clipping range per group by signed gradient descent, so that each decoder block's output stays
close to the full-precision block's, and writes the result as a GGUF file of the same llama.cpp type
(Q4_0, Q4_1, Q4_K_M, ...) that every llama.cpp runtime reads as usual. The weights a tuned merge moved
are the ones plain rounding throws back onto the base's grid point; a rounding tuned on the merged
model's own outputs keeps more of that change.

Calibration text is the model's own training rows (never dev rows), built by the same prompt builder
as training and packed into fixed-length windows: AutoRound drops any sample shorter than its window.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError
from edgewrite.quantize import rounding

# llama.cpp type -> AutoRound's GGUF scheme (AutoRound 0.16 writes these; IQ types are not among them)
SCHEMES = {
    "Q4_0": "gguf:q4_0",
    "Q4_1": "gguf:q4_1",
    "Q5_0": "gguf:q5_0",
    "Q5_1": "gguf:q5_1",
    "Q2_K_S": "gguf:q2_k_s",
    "Q3_K_S": "gguf:q3_k_s",
    "Q3_K_M": "gguf:q3_k_m",
    "Q3_K_L": "gguf:q3_k_l",
    "Q4_K_S": "gguf:q4_k_s",
    "Q4_K_M": "gguf:q4_k_m",
    "Q5_K_S": "gguf:q5_k_s",
    "Q5_K_M": "gguf:q5_k_m",
    "Q6_K": "gguf:q6_k",
    "Q8_0": "gguf:q8_0",
}
SEQLEN = 256
BATCH = 4


def scheme_for(gguf_type: str) -> str:
    scheme = SCHEMES.get(gguf_type.upper())
    if scheme is None:
        raise EdgewriteError(
            f"--rounding autoround writes {', '.join(SCHEMES)}; not {gguf_type} "
            "(pick one with --type, e.g. --type Q4_0)"
        )
    return scheme


def _import_autoround() -> Any:
    try:
        import auto_round
    except ImportError as e:
        raise EdgewriteError(
            "--rounding autoround needs AutoRound: pip install auto-round==0.16.1 (or re-run ./install.sh)"
        ) from e
    return auto_round


class _BlockLog(logging.Filter):
    """AutoRound logs every tensor it writes, and advice on its own API, at INFO and WARNING: turn its one
    line per tuned block into a plain progress line of ours, pass errors, drop the rest."""

    def __init__(self, blocks: int, log) -> None:
        super().__init__()
        self.blocks, self.done, self.log = blocks, 0, log

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        message = record.getMessage()
        if "loss iter" in message:
            self.done += 1
            loss = message.split("loss", 1)[1].strip()
            self.log(f"autoround: block {self.done}/{self.blocks} tuned ({loss})")
        return False


def layer_overrides(model: Any, overrides: list[tuple[str, str]]) -> dict[str, str]:
    """``--tensor-type`` patterns (searched in GGUF tensor names, as llama-quantize does) as AutoRound's
    ``layer_config``: the model's linear layers whose GGUF name matches, with the pattern's type (the last
    matching pattern wins, as in llama-quantize). gguf-py's own name map gives each layer's GGUF name."""
    import re

    import gguf

    if not overrides:
        return {}
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, model.config.num_hidden_layers)
    out: dict[str, str] = {}
    for module_name, module in model.named_modules():
        if type(module).__name__ != "Linear" or module_name == "lm_head":
            continue
        gguf_name = names.get_name(f"{module_name}.weight", try_suffixes=(".weight",))
        if gguf_name is None:
            continue
        for pattern, type_name in overrides:
            if re.search(pattern, gguf_name):
                out[module_name] = scheme_for(type_name)
    if not out:
        patterns = ", ".join(f"{p}={t}" for p, t in overrides)
        raise EdgewriteError(f"--tensor-type {patterns}: matches no layer of this model (GGUF names: blk.N.ffn_down…)")
    return out


def windows(texts: list[str], tokenizer: Any, seqlen: int = SEQLEN) -> list[Any]:
    """The calibration texts as one token stream cut into ``seqlen``-token windows (a [1, seqlen] tensor each)."""
    import torch

    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
    out = [torch.tensor([ids[i : i + seqlen]]) for i in range(0, len(ids) - seqlen + 1, seqlen)]
    if not out:
        raise EdgewriteError(
            f"--rounding autoround needs at least {seqlen} calibration tokens; these {len(texts)} rows hold "
            f"{len(ids)}: raise --samples"
        )
    return out


def export(
    model_dir: Path,
    out: Path,
    gguf_type: str,
    texts: list[str],
    tokenizer: Any,
    iters: int,
    device: str = "cpu",
    log=print,
    model_fingerprint: str | None = None,
    overrides: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Tune the rounding of ``model_dir`` on ``texts`` and write ``out/model-<type>.gguf``; for Q4_0 also
    ``out/rounding.npz``, the rounding as data (:mod:`edgewrite.quantize.rounding`), which ``quantize
    --rounding`` applies to the same model without AutoRound, training rows or tuning time.
    ``overrides``: ``(regex, type)`` pairs as llama-quantize's ``--tensor-type`` takes them, matched against
    GGUF tensor names; those layers are tuned and written in that type (AutoRound's ``layer_config``)."""
    gguf_type = gguf_type.upper()
    scheme = scheme_for(gguf_type)
    auto_round = _import_autoround()
    import torch
    from transformers import AutoModelForCausalLM

    chunks = windows(texts, tokenizer)
    log(f"autoround: {gguf_type}, {iters} steps per block, {len(chunks)} windows of {SEQLEN} tokens")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True)
    layer_config = layer_overrides(model, overrides or [])
    if layer_config:
        kinds = sorted(set(layer_config.values()))
        log(f"autoround: {len(layer_config)} layers written as {', '.join(k.split(':')[1].upper() for k in kinds)}")
    scratch = out / "autoround"
    # on the handlers: records of AutoRound's child loggers (its GGUF writer) reach them too
    handlers = logging.getLogger("autoround").handlers
    progress = _BlockLog(model.config.num_hidden_layers, log)
    for handler in handlers:
        handler.addFilter(progress)
    started = time.perf_counter()
    try:
        compressor = auto_round.AutoRound(
            model,
            tokenizer,
            scheme=scheme,
            iters=iters,
            nsamples=len(chunks),
            seqlen=SEQLEN,
            batch_size=min(BATCH, len(chunks)),
            dataset=chunks,
            layer_config=layer_config or None,
            device_map=device,
            enable_torch_compile=False,
            seed=42,
        )
        compressor.quantize_and_save(str(scratch), format=scheme)
    finally:
        for handler in handlers:
            handler.removeFilter(progress)
    written = sorted(scratch.rglob("*.gguf"))
    if len(written) != 1:
        raise EdgewriteError(f"AutoRound wrote {len(written)} GGUF files, expected one; the artifact was not kept")
    target = out / f"model-{gguf_type.lower()}.gguf"
    written[0].replace(target)
    shutil.rmtree(scratch)
    from edgewrite.quantize.gguf import tensor_types

    details: dict[str, Any] = {}
    if gguf_type in rounding.TUNED_TYPES:
        import tempfile

        from edgewrite.quantize.gguf import convert_f16

        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            f16 = Path(tmp) / "model-f16.gguf"
            convert_f16(model_dir, f16)
            details["rounding_file"] = rounding.build(target, f16, out / rounding.FILE_NAME, model_fingerprint)
        log(
            f"autoround: rounding kept as data in {rounding.FILE_NAME} "
            f"({details['rounding_file']['bytes'] / 1e6:.1f} MB; "
            f"{details['rounding_file']['weights_off_nearest']:.1%} of weights off nearest rounding)"
        )
    return details | {
        "gguf_file": target.name,
        "type": gguf_type,
        "rounding": "autoround",
        "autoround": {
            "version": auto_round.__version__,
            "scheme": scheme,
            "iters": iters,
            "windows": len(chunks),
            "window_tokens": SEQLEN,
            "calibration_rows": len(texts),
            **({"layer_overrides": len(layer_config)} if layer_config else {}),
            "seconds": round(time.perf_counter() - started, 1),
        },
        "tensor_types": tensor_types(target),  # AutoRound moves rows its type cannot hold to another type itself
    }
