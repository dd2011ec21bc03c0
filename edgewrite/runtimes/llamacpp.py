"""llama.cpp runtime for GGUF artifacts, on llama-cpp-python's low-level API.

Why not ``llama_cpp.Llama.generate``: its draft-model path forces ``logits_all`` (the LM head on every
prompt token, and an n_ctx x vocab float array: 400 MB at n_ctx 2048 for a 49k vocabulary), drafts
from the leftmost n-gram match in the whole prompt (for us usually inside the system prompt), and the
high-level class decodes one sequence at a time. This engine loads the model and a context with
several sequences itself and decodes greedily, asking llama.cpp for logits only where a token is
chosen:

- one request: the KV cache keeps the longest common prefix with the previous request (the chat
  template and the instruction are the same for every sentence of a document), and edits are
  copy-speculated: draft tokens are copied from the text being edited (an edit mostly repeats its
  input) and verified in one forward pass; the output is exactly plain greedy decoding's.
- several requests: decoded together as sequences of one batch, their common prompt prefix evaluated
  once and shared (``llama_memory_seq_cp`` on a unified KV cache).

Tokens come from llama.cpp's own tokenizer; the chat template from the artifact through
``runtimes.chat`` (no transformers, no torch).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError
from edgewrite.runtimes import Generation

DRAFT_TOKENS = 10  # copied per verification step (0 turns copy-speculation off)
_backend_lock = threading.Lock()
_backend_ready = False


def _init_backend() -> None:
    global _backend_ready
    import llama_cpp
    from llama_cpp import _logger

    _logger.set_verbose(False)
    with _backend_lock:
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True


class CopyDrafter:
    """Draft tokens for an edit: continue the source text from where the output's last n-gram matches
    it, preferring the match nearest after the previous one (the output walks through the source)."""

    def __init__(self, source: list[int], max_ngram: int = 3) -> None:
        self.source, self.max_ngram, self.ptr = source, max_ngram, 0

    def propose(self, out: list[int], k: int) -> list[int]:
        s = self.source
        if not s or k <= 0:
            return []
        if not out:
            return s[:k]
        for n in range(min(self.max_ngram, len(out)), 0, -1):
            gram = out[-n:]
            hits = [j for j in range(len(s) - n + 1) if s[j : j + n] == gram]
            if hits:
                after = [j for j in hits if j + n >= self.ptr]
                j = min(after) if after else hits[-1]
                self.ptr = j + n
                return s[j + n : j + n + k]
        return []


class LlamaCppRuntime:
    name = "llamacpp"
    batches = True  # several prompts decode together, as sequences of one batch

    def __init__(
        self,
        path: Path,
        gguf_file: str,
        stop_token: str,
        device: str = "cpu",
        threads: int | None = None,
        n_ctx: int = 2048,
        parallel: int = 4,
        draft_tokens: int = DRAFT_TOKENS,
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals

        from edgewrite.runtimes.chat import ChatTokenizer

        gguf = path / gguf_file
        if not gguf.is_file():
            raise EdgewriteError(f"{gguf} is missing; re-run `edgewrite quantize`")
        if device == "cuda" and not llama_cpp.llama_supports_gpu_offload():
            raise EdgewriteError(
                "--device cuda: this llama-cpp-python was built without CUDA (reinstall with CMAKE_ARGS=-DGGML_CUDA=on)"
            )
        _init_backend()
        self.llama_cpp, self.device, self.draft_tokens = llama_cpp, device, draft_tokens
        self.parallel, self.n_ctx = max(1, parallel), n_ctx
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0x7FFFFFFF if device == "cuda" else 0
        try:
            self.model = _internals.LlamaModel(path_model=str(gguf), params=mparams, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise EdgewriteError(f"llama.cpp could not load {gguf} (corrupt or truncated?): {e}") from e
        n_ctx = min(n_ctx, self.model.n_ctx_train() * self.parallel) if self.model.n_ctx_train() > 0 else n_ctx
        self.n_ctx = n_ctx
        cparams = llama_cpp.llama_context_default_params()
        n_threads = threads or os.cpu_count() or 1
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, 512, 512
        cparams.n_threads = cparams.n_threads_batch = n_threads
        cparams.n_seq_max, cparams.kv_unified = self.parallel, True
        self.ctx = _internals.LlamaContext(model=self.model, params=cparams, verbose=False)
        self.n_batch = 512
        self.batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=self.parallel, verbose=False)
        self.n_vocab = self.model.n_vocab()
        self.tokenizer = ChatTokenizer(path)
        self.stop_ids = {self.model.token_eos(), self.model.token_eot(), *self.tokenize(stop_token)} - {-1}
        self.lock = threading.Lock()  # one context: requests take turns (batches are decoded together)
        self._cached: list[int] = []  # sequence 0's tokens in the KV cache
        self.prefix_cache = True  # reuse the cached common prefix of the previous request

    # ------------------------------------------------------------------ low level
    def tokenize(self, text: str) -> list[int]:
        return list(self.model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> dict[int, Any]:
        """Evaluate (token, position, sequence, logits?) items, in chunks of n_batch; the logits of the
        items that asked for them, by item index."""
        import numpy as np

        lc, b = self.llama_cpp, self.batch.batch
        logits = {}
        for start in range(0, len(items), self.n_batch):
            chunk = items[start : start + self.n_batch]
            b.n_tokens = len(chunk)
            for i, (tok, pos, seq, want) in enumerate(chunk):
                b.token[i], b.pos[i], b.seq_id[i][0], b.n_seq_id[i], b.logits[i] = tok, pos, seq, 1, want
            rc = lc.llama_decode(self.ctx.ctx, b)
            if rc != 0:
                raise EdgewriteError(f"llama.cpp could not evaluate the prompt (code {rc}): the text is too long")
            for i, (_, _, _, want) in enumerate(chunk):
                if want:
                    row = lc.llama_get_logits_ith(self.ctx.ctx, i)
                    logits[start + i] = np.ctypeslib.as_array(row, shape=(self.n_vocab,))
        return logits

    def _argmax(self, row: Any) -> int:
        return int(row.argmax())

    def _forget(self, seq: int, p0: int = 0) -> None:
        self.ctx.kv_cache_seq_rm(seq, p0, -1)

    def next_token_logits(self, prompt: str | list[int]) -> Any:
        """Logits for the token after ``prompt`` (text or token ids), from a fresh evaluation."""
        tokens = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        with self.lock:
            self.llama_cpp.llama_memory_clear(self.ctx.memory, True)
            self._cached = []
            rows = self._decode([(t, i, 0, i == len(tokens) - 1) for i, t in enumerate(tokens)])
            out = rows[len(tokens) - 1].copy()
            self.llama_cpp.llama_memory_clear(self.ctx.memory, True)
        return out

    # ------------------------------------------------------------------ one request
    def _steps(self, prompt: list[int], limit: int, source: list[int] | None) -> Iterator[tuple[list[int], float]]:
        """Yield (new tokens, time) as they are accepted; return the finish reason. Sequence 0, with the
        cached prefix reused and copy-speculation when a source text is known."""
        t0 = time.perf_counter()
        common = 0
        if not self.prefix_cache:
            self._cached = []
        for a, b in zip(self._cached, prompt, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(prompt) - 1)  # the last prompt token is evaluated again for its logits
        self._forget(0, common)
        rows = self._decode([(t, common + i, 0, common + i == len(prompt) - 1) for i, t in enumerate(prompt[common:])])
        self._cached = list(prompt)
        cur = self._argmax(rows[len(prompt) - common - 1])
        pos, emitted = len(prompt), 0
        drafter = CopyDrafter(source or []) if self.draft_tokens and source else None
        out: list[int] = []
        while True:
            if cur in self.stop_ids:
                return "stop"
            out.append(cur)
            emitted += 1
            yield [cur], time.perf_counter() - t0
            if emitted >= limit or pos + 1 >= self.n_ctx:
                return "length"
            draft = drafter.propose(out, min(self.draft_tokens, limit - emitted)) if drafter else []
            rows = self._decode([(cur, pos, 0, True)] + [(d, pos + 1 + i, 0, True) for i, d in enumerate(draft)])
            preds = [self._argmax(rows[i]) for i in range(len(draft) + 1)]
            accepted = 0
            while accepted < len(draft) and preds[accepted] == draft[accepted]:
                accepted += 1
            self._cached.append(cur)
            pos += 1
            for tok in draft[:accepted]:  # verified: exactly what plain greedy decoding would emit
                if tok in self.stop_ids:
                    self._forget(0, pos)
                    self._cached = self._cached[:pos]
                    return "stop"
                out.append(tok)
                self._cached.append(tok)
                pos += 1
                emitted += 1
                yield [tok], time.perf_counter() - t0
                if emitted >= limit:
                    self._forget(0, pos)
                    return "length"
            self._forget(0, pos)  # drop the rejected drafts' cache entries
            cur = preds[accepted]

    def _one(self, prompt: str, limit: int, source: str | None) -> Generation:
        tokens = self.tokenize(prompt)
        if len(tokens) + 1 >= self.n_ctx:
            return Generation("", len(tokens), 0, 0.0, 0.0, "length")  # too long to edit: left as it is
        src = self.tokenize(source) if source else None
        out: list[int] = []
        first = None
        t0 = time.perf_counter()
        gen = self._steps(tokens, limit, src)
        try:
            while True:
                new, _ = next(gen)
                first = first if first is not None else time.perf_counter()
                out += new
        except StopIteration as stop:
            finish = stop.value
        end = time.perf_counter()
        first = first or end
        text = self.model.detokenize(out).decode("utf-8", errors="replace")
        return Generation(text, len(tokens), len(out), first - t0, end - first, finish)

    # ------------------------------------------------------------------ several requests
    def _group(self, prompts: list[str], limit: int) -> list[Generation]:
        """Decode up to ``parallel`` prompts together; their common prefix is evaluated once and shared."""
        lc = self.llama_cpp
        toks = [self.tokenize(p) for p in prompts]
        lc.llama_memory_clear(self.ctx.memory, True)
        self._cached = []
        common = 0
        while all(len(t) > common + 1 for t in toks) and len({t[common] for t in toks}) == 1:
            common += 1
        t0 = time.perf_counter()
        if common:
            self._decode([(t, i, 0, False) for i, t in enumerate(toks[0][:common])])
            for s in range(1, len(toks)):
                lc.llama_memory_seq_cp(self.ctx.memory, 0, s, 0, common)
        items, last = [], {}
        for s, t in enumerate(toks):
            for i, tok in enumerate(t[common:]):
                if common + i == len(t) - 1:
                    last[s] = len(items)
                items.append((tok, common + i, s, common + i == len(t) - 1))
        rows = self._decode(items)
        first_at = time.perf_counter()
        cur = {s: self._argmax(rows[last[s]]) for s in range(len(toks))}
        pos = {s: len(t) for s, t in enumerate(toks)}
        out: dict[int, list[int]] = {s: [] for s in range(len(toks))}
        finish: dict[int, str] = {}
        while True:
            for s in list(cur):
                if cur[s] in self.stop_ids:
                    finish[s] = "stop"
                elif len(out[s]) >= limit or pos[s] + 1 >= self.n_ctx // len(toks):
                    finish[s] = "length"
                else:
                    out[s].append(cur[s])
                    continue
                del cur[s]
            live = [s for s in cur if len(out[s]) < limit]
            for s in [s for s in cur if s not in live]:
                finish[s] = "length"
                del cur[s]
            if not live:
                break
            rows = self._decode([(cur[s], pos[s], s, True) for s in live])
            for i, s in enumerate(live):
                pos[s] += 1
                cur[s] = self._argmax(rows[i])
        end = time.perf_counter()
        lc.llama_memory_clear(self.ctx.memory, True)
        return [
            Generation(
                self.model.detokenize(out[s]).decode("utf-8", errors="replace"),
                len(toks[s]),
                len(out[s]),
                first_at - t0,
                end - first_at,
                finish[s],
            )
            for s in range(len(toks))
        ]

    # ------------------------------------------------------------------ the Runtime protocol
    def generate(
        self, prompts: list[str], max_new_tokens: int = 128, sources: list[str] | None = None
    ) -> list[Generation]:
        """Greedy answers. One prompt: prefix reuse and copy-speculation from ``sources`` (the texts being
        edited); several: decoded together, ``parallel`` at a time."""
        with self.lock:
            if len(prompts) == 1:
                return [self._one(prompts[0], max_new_tokens, sources[0] if sources else None)]
            results: list[Generation] = []
            for start in range(0, len(prompts), self.parallel):
                group = prompts[start : start + self.parallel]
                fits = [len(self.tokenize(p)) + 1 < self.n_ctx // len(group) for p in group]
                if all(fits):
                    results += self._group(group, max_new_tokens)
                else:  # a prompt too long to share the context: one at a time
                    results += [self._one(p, max_new_tokens, None) for p in group]
            return results

    def stream(self, prompt: str, max_new_tokens: int = 128) -> Iterator[str]:
        """Text pieces of one greedy answer as they are decoded; returns the finish reason."""
        with self.lock:
            tokens = self.tokenize(prompt)
            if len(tokens) + 1 >= self.n_ctx:
                return "length"
            out: list[int] = []
            emitted = ""
            gen = self._steps(tokens, max_new_tokens, None)
            while True:
                try:
                    new, _ = next(gen)
                except StopIteration as stop:
                    return stop.value
                out += new
                text = self.model.detokenize(out).decode("utf-8", errors="ignore")
                if len(text) > len(emitted):  # multi-byte characters arrive whole
                    yield text[len(emitted) :]
                    emitted = text

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()
        self.model.close()
