"""One interface to run any artifact: ``load_runtime(artifact).generate(prompts)``.

Each backend module (hf, llamacpp, gptq, onnx) is the only place that knows its library's API, and
imports it inside its functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from edgewrite.errors import EdgewriteError
from edgewrite.runtimes.base import Generation  # noqa: F401 - part of this package's API


class Runtime(Protocol):
    name: str
    device: str
    batches: bool  # generate() decodes several prompts together (else one after another)
    tokenizer: Any  # the artifact's transformers tokenizer: the prompt builder renders its chat template

    def generate(
        self, prompts: list[str], max_new_tokens: int = 128, sources: list[str] | None = None
    ) -> list[Generation]:
        """Greedy answers; ``sources`` (the texts being edited) lets a runtime copy-speculate from them."""
        ...

    def stream(self, prompt: str, max_new_tokens: int = 128) -> Iterator[str]:
        """Text pieces of one greedy answer as they are decoded."""
        ...

    def tokenize(self, text: str) -> list[int]: ...

    def close(self) -> None: ...


def load_runtime(
    artifact: Path | str, device: str = "cpu", threads: int | None = None, batch_size: int = 8, n_ctx: int | None = None
) -> tuple[Runtime, dict]:
    """The runtime for an artifact (chosen from its manifest) and the manifest itself. ``n_ctx``: KV-cache
    cells of the llama.cpp runtime (its default when None; the others size their caches per request)."""
    from edgewrite.artifacts import read_manifest

    path = Path(artifact)
    manifest = read_manifest(path)
    fmt = manifest.get("format")
    if manifest.get("kind") in ("adapter", "data"):
        raise EdgewriteError(f"{path} is a '{manifest['kind']}' artifact, not a model; merge it or give a model")
    if fmt in ("safetensors", "gptq") and not any(path.glob("*.safetensors")):
        raise EdgewriteError(f"{path} has no model weights (*.safetensors); re-run the stage that made it")
    if fmt == "safetensors":
        from edgewrite.runtimes.hf import HFRuntime

        return HFRuntime(path, device=device, threads=threads, batch_size=batch_size), manifest
    if fmt == "gguf":
        from edgewrite.runtimes.llamacpp import LlamaCppRuntime

        details = manifest["details"]
        extra: dict = {"n_ctx": n_ctx} if n_ctx else {}
        if details.get("lora_file"):
            extra["lora_file"] = details["lora_file"]
        return LlamaCppRuntime(
            path, details["gguf_file"], manifest["stop_token"], device=device, threads=threads, **extra
        ), manifest
    if fmt == "gptq":
        from edgewrite.runtimes.gptq import GPTQRuntime

        return GPTQRuntime(path, device=device, threads=threads, batch_size=batch_size), manifest
    if fmt == "onnx":
        from edgewrite.runtimes.onnx import OnnxRuntime

        return OnnxRuntime(path, device=device, threads=threads), manifest
    raise EdgewriteError(f"{path}: no runtime for format '{fmt}'")
