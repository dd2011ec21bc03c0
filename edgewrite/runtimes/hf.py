"""PyTorch/transformers runtime: CPU or CUDA, fp32/bf16/fp16, batched greedy decoding."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError
from edgewrite.runtimes.base import Generation


class HFRuntime:
    name = "hf"
    batches = True  # does generate() decode several prompts in one forward pass?

    def __init__(
        self, path: Path, device: str = "cpu", dtype: str = "float32", threads: int | None = None, batch_size: int = 8
    ) -> None:
        import torch
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load

        if device == "cuda" and not torch.cuda.is_available():
            raise EdgewriteError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
        if threads:
            torch.set_num_threads(threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
            model = self._load(path, device, getattr(torch, dtype))
        except Exception as e:  # noqa: BLE001 - safetensors, torch and transformers each raise their own types
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise EdgewriteError(f"could not load the model in {path} (corrupt or truncated?): {first}") from e
        self._setup(model, tokenizer, device, batch_size)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, device: str = "cpu", batch_size: int = 8) -> HFRuntime:
        """A runtime over a model already in memory (e.g. the one being trained), same decoding as a loaded one."""
        runtime = cls.__new__(cls)
        tokenizer.padding_side = "left"
        runtime._setup(model, tokenizer, device, batch_size)
        return runtime

    def _setup(self, model: Any, tokenizer: Any, device: str, batch_size: int) -> None:
        self.model, self.tokenizer, self.device, self.batch_size = model, tokenizer, device, batch_size
        eos = self.model.generation_config.eos_token_id
        self.stop_ids = set(eos if isinstance(eos, list) else [eos])
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _load(self, path: Path, device: str, dtype: Any) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True).to(device).eval()

    def next_token_logits(self, prompt: str | list[int]) -> Any:
        """Logits (numpy, float32) for the token after ``prompt`` (text or token ids)."""
        import torch

        ids = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), logits_to_keep=1)
        return out.logits[0, -1].float().cpu().numpy()

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    prompt_lookup = 10  # draft tokens copied from the prompt for a single request (transformers' prompt lookup)

    def generate(
        self, prompts: list[str], max_new_tokens: int = 128, sources: list[str] | None = None
    ) -> list[Generation]:
        """Greedy answers, ``batch_size`` prompts per forward pass; a single prompt is decoded with
        transformers' prompt-lookup speculation (lossless under greedy decoding: its drafts are verified)."""
        import torch
        from transformers import LogitsProcessor, LogitsProcessorList

        class _FirstCall(LogitsProcessor):
            def __init__(self) -> None:
                self.at: float | None = None

            def __call__(self, input_ids, scores):  # noqa: ANN001
                if self.at is None:
                    self.at = time.perf_counter()
                return scores

        results: list[Generation] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            first = _FirstCall()
            lookup = {"prompt_lookup_num_tokens": self.prompt_lookup} if len(batch) == 1 and self.prompt_lookup else {}
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = self.model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    logits_processor=LogitsProcessorList([first]),
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=list(self.stop_ids),
                    use_cache=True,
                    **lookup,
                )
            total = time.perf_counter() - t0
            ttft = (first.at or t0 + total) - t0
            width = enc["input_ids"].shape[1]
            for i in range(len(batch)):
                new = out[i, width:].tolist()
                finish = "length"
                for j, tok in enumerate(new):
                    if tok in self.stop_ids:
                        new, finish = new[:j], "stop"
                        break
                results.append(
                    Generation(
                        text=self.tokenizer.decode(new, skip_special_tokens=True),
                        prompt_tokens=int(enc["attention_mask"][i].sum()),
                        new_tokens=len(new),
                        ttft_s=ttft,
                        decode_s=total - ttft,
                        finish=finish,
                    )
                )
        return results

    def stream(self, prompt: str, max_new_tokens: int = 128) -> Iterator[str]:
        """Text pieces of one greedy answer as they are decoded; returns the finish reason."""
        import threading

        import torch
        from transformers import TextIteratorStreamer

        enc = self.tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: list[Any] = []

        def work() -> None:
            with torch.inference_mode():
                result.append(
                    self.model.generate(
                        **enc,
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        streamer=streamer,
                        pad_token_id=self.tokenizer.pad_token_id,
                        eos_token_id=list(self.stop_ids),
                        use_cache=True,
                    )
                )

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        yield from (piece for piece in streamer if piece)
        thread.join()
        new = result[0][0, enc["input_ids"].shape[1] :].tolist() if result else []
        return "stop" if new and new[-1] in self.stop_ids else "length"

    def close(self) -> None:
        del self.model
