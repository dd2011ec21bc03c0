"""GPTQ runtime: GPT-QModel's kernels (TorchAtenLinear on CPU when the group size allows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgewrite.runtimes.hf import HFRuntime


class GPTQRuntime(HFRuntime):
    name = "gptq"

    def _load(self, path: Path, device: str, dtype: Any) -> Any:
        from edgewrite.quantize.gptq import _import_gptqmodel

        gptqmodel = _import_gptqmodel()
        wrapped = gptqmodel.GPTQModel.load(str(path), device=device)
        return wrapped.model.eval()
