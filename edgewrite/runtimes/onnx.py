"""ONNX Runtime GenAI runtime for ONNX artifacts (CPU provider; CUDA with onnxruntime-genai-cuda)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

from edgewrite.errors import EdgewriteError
from edgewrite.runtimes import Generation


class OnnxRuntime:
    name = "onnx"
    batches = False  # does generate() decode several prompts in one forward pass?

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None) -> None:
        try:
            import onnxruntime  # noqa: F401  (loads the ORT library that onnxruntime_genai looks for)
            import onnxruntime_genai as og
        except ImportError as e:
            raise EdgewriteError("ONNX artifacts need onnxruntime-genai: re-run ./install.sh") from e
        from transformers import AutoTokenizer

        self.og = og
        self.device = device
        config = og.Config(str(path))
        config.clear_providers()
        if device == "cuda":
            config.append_provider("cuda")
        if threads:
            config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        try:
            self.model = og.Model(config)
        except Exception as e:  # noqa: BLE001 - og raises a plain RuntimeError/OrtException for bad files
            raise EdgewriteError(f"onnxruntime-genai could not load {path} (corrupt or truncated?): {e}") from e
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self._og_tokenizer = og.Tokenizer(self.model)
        genai = json.loads((path / "genai_config.json").read_text())
        eos = genai["model"]["eos_token_id"]
        self.stop_ids = set(eos if isinstance(eos, list) else [eos])
        self.context = genai["model"].get("context_length", 2048)

    def tokenize(self, text: str) -> list[int]:
        return list(self._og_tokenizer.encode(text))

    def generate(self, prompts: list[str], max_new_tokens: int = 128) -> list[Generation]:
        og = self.og
        results = []
        for prompt in prompts:
            tokens = self.tokenize(prompt)
            params = og.GeneratorParams(self.model)
            params.set_search_options(do_sample=False, max_length=min(self.context, len(tokens) + max_new_tokens))
            t0 = time.perf_counter()
            generator = og.Generator(self.model, params)
            generator.append_tokens(tokens)
            out: list[int] = []
            first = None
            finish = "length"
            while not generator.is_done() and len(out) < max_new_tokens:
                generator.generate_next_token()
                tok = int(generator.get_next_tokens()[0])
                if first is None:
                    first = time.perf_counter()
                if tok in self.stop_ids:
                    finish = "stop"
                    break
                out.append(tok)
            end = time.perf_counter()
            first = first or end
            del generator
            results.append(
                Generation(
                    text=self._og_tokenizer.decode(out),
                    prompt_tokens=len(tokens),
                    new_tokens=len(out),
                    ttft_s=first - t0,
                    decode_s=end - first,
                    finish=finish,
                )
            )
        return results

    def stream(self, prompt: str, max_new_tokens: int = 128) -> Iterator[str]:
        og = self.og
        tokens = self.tokenize(prompt)
        params = og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=min(self.context, len(tokens) + max_new_tokens))
        generator = og.Generator(self.model, params)
        generator.append_tokens(tokens)
        decoder = self._og_tokenizer.create_stream()
        count = 0
        while not generator.is_done() and count < max_new_tokens:
            generator.generate_next_token()
            tok = int(generator.get_next_tokens()[0])
            if tok in self.stop_ids:
                break
            count += 1
            piece = decoder.decode(tok)
            if piece:
                yield piece

    def close(self) -> None:
        del self.model
