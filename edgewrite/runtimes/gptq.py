"""GPTQ runtime: GPT-QModel's kernels (TorchAtenLinear on CPU when the group size allows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgewrite.runtimes.hf import HFRuntime


class GPTQRuntime(HFRuntime):
    name = "gptq"

    def _load(self, path: Path, device: str, dtype: Any) -> Any:
        import contextlib
        import sys

        from edgewrite.quantize.gptq import import_gptqmodel

        gptqmodel = import_gptqmodel()
        # GPT-QModel prints debug lines ("from_quantized: adapter: None") on stdout, where answers go
        with contextlib.redirect_stdout(sys.stderr):
            wrapped = gptqmodel.GPTQModel.load(str(path), device=device)
        return wrapped.model.eval()
