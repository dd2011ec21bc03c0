"""onnxruntime-genai's model builder, run as ``python -m edgewrite.quantize.genai_builder ARGS`` (the builder's own
arguments), with one fix for Gemma 3 under transformers 5.

transformers 5 stores Gemma 3's RoPE per layer type (``rope_parameters = {"full_attention": {...},
"sliding_attention": {...}}``) and has no ``rope_theta`` / ``rope_local_base_freq`` attributes; the builder
(0.18) reads the flat form: its Gemma 3 class fails on ``KeyError: 'rope_type'``, and a flat reader that did not
fail would fall back to theta 10000 for the global layers (Gemma 3 uses 1e6). Before the Gemma 3 builder reads
the config, this puts the per-type values where it looks for them. Its subclasses, which read the nested form
themselves (Gemma 4's builder), are left alone. Nothing else changes.
"""

from __future__ import annotations

import runpy
import sys
from typing import Any


def flatten_layer_type_rope(config: Any) -> bool:
    """Full-attention RoPE as the flat ``rope_parameters``/``rope_theta``; sliding layers' theta as
    ``rope_local_base_freq``. True when the config was in the per-layer-type form."""
    rope = getattr(config, "rope_parameters", None)
    if not isinstance(rope, dict) or "rope_type" in rope or "full_attention" not in rope:
        return False
    full = dict(rope["full_attention"])
    local = rope.get("sliding_attention") or full
    config.rope_parameters = full
    config.rope_theta = full["rope_theta"]
    config.rope_local_base_freq = local["rope_theta"]
    return True


def _patch() -> None:
    import importlib
    import os

    import onnxruntime_genai.models

    # builder.py imports its classes as the top-level package `builders` (its folder on sys.path), so the class
    # to fix is that module's, not onnxruntime_genai.models.builders.gemma's
    folder = os.path.dirname(onnxruntime_genai.models.__file__)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    gemma = importlib.import_module("builders.gemma")
    init = gemma.Gemma3Model.__init__

    def __init__(self: Any, config: Any, *args: Any, **kwargs: Any) -> None:
        if type(self) is gemma.Gemma3Model:  # not its subclasses (Gemma 4 reads the nested form itself)
            flatten_layer_type_rope(config)
        init(self, config, *args, **kwargs)

    gemma.Gemma3Model.__init__ = __init__


if __name__ == "__main__":
    _patch()
    sys.argv[0] = "onnxruntime_genai.models.builder"
    runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__", alter_sys=True)
