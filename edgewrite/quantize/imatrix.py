"""An importance matrix for llama.cpp's quantizer, from the model's own training rows.

llama.cpp weighs each input column of a weight by how large its activations are when it rounds that
weight to 4 bits (``llama_model_quantize_params.imatrix``). Its ``llama-imatrix`` tool collects the
statistic, but that tool is a C++ program that is not in the llama-cpp-python wheel, so the same
statistic is collected here with torch forward hooks on the merged model: for every linear layer
``W`` (GGUF name ``blk.N.<kind>.weight``), the mean over calibration tokens of ``x_j ** 2`` for each
input column ``j`` (llama-imatrix's ``in_sum2 / counts``). The calibration rows are training rows in
the prompt format the model was tuned on, never dev rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgewrite.errors import EdgewriteError


def collect(
    model_dir: Path, texts: list[str], tokenizer, log: Callable[[str], None] = print
) -> tuple[dict[str, np.ndarray], int]:
    """Per GGUF tensor name, the mean squared input activation of each column; and the tokens seen."""
    import gguf
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if not texts:
        raise EdgewriteError("no calibration rows for the importance matrix")
    config = AutoConfig.from_pretrained(model_dir)
    arch = gguf.MODEL_ARCH.LLAMA if config.model_type == "llama" else None
    if arch is None:
        raise EdgewriteError(
            f"--rounding imatrix supports LLaMA-architecture models; this one is '{config.model_type}'"
        )
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True)
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    hooks = []

    def hook_for(name: str):
        def hook(_module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            sums[name] = sums.get(name, 0) + (x * x).sum(dim=0)

        return hook

    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module_name != "lm_head":
            gguf_name = names.get_name(module_name)
            if gguf_name is None:
                raise EdgewriteError(f"no GGUF tensor name for layer '{module_name}': cannot build an imatrix")
            hooks.append(module.register_forward_pre_hook(hook_for(f"{gguf_name}.weight")))
    tokens = 0
    step = max(1, len(texts) // 10)
    try:
        with torch.inference_mode():
            for i, text in enumerate(texts):  # one row per pass: no padding tokens in the statistic
                ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
                model(input_ids=ids)
                tokens += ids.shape[1]
                if (i + 1) % step == 0 or i + 1 == len(texts):
                    log(f"imatrix: {i + 1}/{len(texts)} rows, {tokens} tokens")
    finally:
        for h in hooks:
            h.remove()
    return {k: (v / tokens).float().numpy() for k, v in sums.items()}, tokens


def save(values: dict[str, np.ndarray], path: Path) -> None:
    np.savez(path, **values)


def parse_tensor_types(specs: list[str]) -> list[tuple[str, str]]:
    """``PATTERN=TYPE`` pairs as llama-quantize's ``--tensor-type`` takes them (PATTERN: a regex searched
    in the GGUF tensor name, e.g. ``attn_v`` or ``blk\\.[0-3]\\.ffn_down``; TYPE: a ggml type such as Q8_0)."""
    import re

    import llama_cpp

    out = []
    for spec in specs:
        pattern, sep, type_name = spec.rpartition("=")
        if not sep or not pattern or not type_name:
            raise EdgewriteError(f"--tensor-type {spec!r}: expected PATTERN=TYPE, e.g. attn_v=Q8_0")
        try:
            re.compile(pattern)
        except re.error as e:
            raise EdgewriteError(f"--tensor-type {spec!r}: the pattern is not a regular expression ({e})") from e
        if getattr(llama_cpp, f"GGML_TYPE_{type_name.upper()}", None) is None:
            known = sorted(
                n.removeprefix("GGML_TYPE_")
                for n in dir(llama_cpp)
                if n.startswith("GGML_TYPE_") and n != "GGML_TYPE_COUNT"
            )
            raise EdgewriteError(f"--tensor-type {spec!r}: unknown ggml type '{type_name}'; known: {', '.join(known)}")
        out.append((pattern, type_name.upper()))
    return out


def load(path: Path) -> dict[str, np.ndarray]:
    """An importance matrix written by :func:`save` (``imatrix.npz`` in a GGUF artifact), checked."""
    import zipfile

    if not path.is_file():
        raise EdgewriteError(f"importance matrix {path} not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            values = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise EdgewriteError(
            f"{path} is not an importance matrix (.npz from `edgewrite quantize --rounding imatrix`): {e}"
        ) from e
    bad = [k for k, v in values.items() if v.ndim != 1 or not np.isfinite(v).all() or (v < 0).any()]
    if not values or bad:
        raise EdgewriteError(f"{path}: not an importance matrix (empty, or bad values for {bad[:3]}); re-make it")
    return values
