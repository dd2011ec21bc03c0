"""ONNX Runtime GenAI runtime for ONNX artifacts (CPU provider; CUDA with onnxruntime-genai-cuda).

One generator is kept between requests: a new prompt rewinds it to the common prefix with the previous
one (``rewind_to``) and appends only its own tokens, so the chat template and instruction are evaluated
once per document. Copy-speculation is not used here: onnxruntime-genai 0.18's n-gram speculation
verifies drafts against every position's logits, which the builder's exports do not output (the LM
head runs on the last position only), and it is limited to batch size 1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError
from edgewrite.runtimes.base import Generation


class OnnxRuntime:
    name = "onnx"
    batches = False  # does generate() decode several prompts in one forward pass?

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None) -> None:
        try:
            import onnxruntime  # noqa: F401  (loads the ORT library that onnxruntime_genai looks for)
            import onnxruntime_genai as og
        except ImportError as e:
            raise EdgewriteError("ONNX artifacts need onnxruntime-genai: re-run ./install.sh") from e
        from edgewrite.runtimes.chat import ChatTokenizer

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
        self.tokenizer = ChatTokenizer(path)
        self._og_tokenizer = og.Tokenizer(self.model)
        genai = json.loads((path / "genai_config.json").read_text())
        eos = genai["model"]["eos_token_id"]
        self.stop_ids = set(eos if isinstance(eos, list) else [eos])
        self.context = genai["model"].get("context_length", 2048)
        self.vocab = genai["model"]["vocab_size"]
        # a sliding-window model's KV cache (Gemma 3's local layers) must hold at least its window, whatever the
        # request's length: every generator's budget is at least that
        window = (genai["model"]["decoder"].get("sliding_window") or {}).get("window_size") or 0
        self.min_length = min(self.context, window)
        self.keep_length = min(
            self.context, max(1024, window)
        )  # the kept generator's budget: one unit's prompt + answer
        self._kept: Any = None
        self.prefix_cache = True  # rewind the kept generator to the common prefix of the previous request

    def next_token_logits(self, prompt: str | list[int]) -> Any:
        """Logits (numpy, float32) for the token after ``prompt`` (text or token ids), from a fresh generator."""
        import numpy as np

        og = self.og
        ids = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        params = og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=max(len(ids) + 1, self.min_length))
        gen = og.Generator(self.model, params)
        gen.append_tokens(ids)
        return np.asarray(gen.get_logits(), dtype=np.float32).reshape(-1)[-self.vocab :]

    def tokenize(self, text: str) -> list[int]:
        return list(self._og_tokenizer.encode(text))

    def _generator(self, tokens: list[int], limit: int) -> Any:
        """A generator positioned after ``tokens``: the kept one rewound to the common prefix when it can be
        reused (same length budget), else a new one."""
        og = self.og
        need = len(tokens) + limit
        max_length = self.keep_length if need <= self.keep_length else min(self.context, max(need, self.min_length))
        kept = getattr(self, "_kept", None) if self.prefix_cache else None
        if kept is not None and kept[1] == max_length:
            gen, _, previous = kept
            common = 0
            for a, b in zip(previous, tokens, strict=False):
                if a != b:
                    break
                common += 1
            common = min(common, len(tokens) - 1)
            if common > 0:
                try:
                    gen.rewind_to(common)
                except RuntimeError:
                    # a sliding-window KV cache (Gemma 3's local layers) has already evicted that prefix once
                    # the last request ran past its window: nothing to reuse, so start a new generator
                    pass
                else:
                    gen.append_tokens(tokens[common:])
                    self._kept = (gen, max_length, list(tokens))
                    return gen
        params = og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=max_length)
        gen = og.Generator(self.model, params)
        gen.append_tokens(tokens)
        self._kept = (gen, max_length, list(tokens))
        return gen

    def generate(
        self, prompts: list[str], max_new_tokens: int = 128, sources: list[str] | None = None
    ) -> list[Generation]:
        results = []
        for prompt in prompts:
            tokens = self.tokenize(prompt)
            if len(tokens) + 1 >= self.context:
                results.append(Generation("", len(tokens), 0, 0.0, 0.0, "length"))
                continue
            t0 = time.perf_counter()
            generator = self._generator(tokens, max(1, min(self.context - len(tokens), max_new_tokens)))
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
            self._kept = (generator, self._kept[1], tokens + out)
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
        """Text pieces of one greedy answer as they are decoded; returns the finish reason."""
        tokens = self.tokenize(prompt)
        if len(tokens) + 1 >= self.context:
            return "length"
        self._kept = None  # a stream gets a generator of its own
        generator = self._generator(tokens, max(1, min(self.context - len(tokens), max_new_tokens)))
        self._kept = None
        decoder = self._og_tokenizer.create_stream()
        count = 0
        while not generator.is_done() and count < max_new_tokens:
            generator.generate_next_token()
            tok = int(generator.get_next_tokens()[0])
            if tok in self.stop_ids:
                return "stop"
            count += 1
            piece = decoder.decode(tok)
            if piece:
                yield piece
        return "length"

    def close(self) -> None:
        self._kept = None
        del self.model
