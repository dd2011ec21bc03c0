"""llama.cpp runtime (llama-cpp-python) for GGUF artifacts; CUDA offload when the wheel has it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from edgewrite.errors import EdgewriteError
from edgewrite.runtimes import Generation


class LlamaCppRuntime:
    name = "llamacpp"
    batches = False  # does generate() decode several prompts in one forward pass?

    def __init__(
        self,
        path: Path,
        gguf_file: str,
        stop_token: str,
        device: str = "cpu",
        threads: int | None = None,
        n_ctx: int = 2048,
    ) -> None:
        import llama_cpp
        from transformers import AutoTokenizer

        gguf = path / gguf_file
        if not gguf.is_file():
            raise EdgewriteError(f"{gguf} is missing; re-run `edgewrite quantize`")
        if device == "cuda" and not llama_cpp.llama_supports_gpu_offload():
            raise EdgewriteError(
                "--device cuda: this llama-cpp-python was built without CUDA (reinstall with CMAKE_ARGS=-DGGML_CUDA=on)"
            )
        self.device = device
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(gguf),
                n_ctx=n_ctx,
                n_threads=threads or os.cpu_count(),
                n_gpu_layers=-1 if device == "cuda" else 0,
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise EdgewriteError(f"llama.cpp could not load {gguf} (corrupt or truncated?): {e}") from e
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.stop_ids = {self.llm.token_eos(), *self.tokenize(stop_token)}

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def generate(self, prompts: list[str], max_new_tokens: int = 128) -> list[Generation]:
        results = []
        for prompt in prompts:
            tokens = self.tokenize(prompt)
            out: list[int] = []
            finish = "length"
            t0 = time.perf_counter()
            first = None
            for tok in self.llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
                if first is None:
                    first = time.perf_counter()
                if tok in self.stop_ids:
                    finish = "stop"
                    break
                out.append(tok)
                if len(out) >= max_new_tokens:
                    break
            end = time.perf_counter()
            first = first or end
            text = self.llm.detokenize(out).decode("utf-8", errors="replace")
            results.append(
                Generation(
                    text=text,
                    prompt_tokens=len(tokens),
                    new_tokens=len(out),
                    ttft_s=first - t0,
                    decode_s=end - first,
                    finish=finish,
                )
            )
        return results

    def stream(self, prompt: str, max_new_tokens: int = 128) -> Iterator[str]:
        out: list[int] = []
        emitted = ""
        for tok in self.llm.generate(self.tokenize(prompt), temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
            if tok in self.stop_ids or len(out) >= max_new_tokens:
                break
            out.append(tok)
            text = self.llm.detokenize(out).decode("utf-8", errors="ignore")
            if len(text) > len(emitted):  # multi-byte characters arrive whole
                yield text[len(emitted) :]
                emitted = text

    def close(self) -> None:
        self.llm.close()
