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
- several requests: continuously batched: up to ``parallel`` sequences decode together, a finished
  one's slot goes at once to the next waiting prompt (evaluated in the same forward pass as the
  others' next tokens), and their common prompt prefix is evaluated once and shared
  (``llama_memory_seq_cp`` on a unified KV cache).

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
from edgewrite.runtimes.base import Generation

# Draft tokens copied per verification pass (0 turns copy-speculation off). On 2 CPU threads a pass costs
# a fixed ~5-9 ms (the weights streamed once) plus ~2.4 ms per token it evaluates, so a rejected draft
# token costs nearly a third of the pass it could save. In a development A/B on the bench's latency rows
# (Q4_K_M, modes interleaved) 4 and 6 measured alike and 10 was slower; benchmarks/decode_limits.py keeps
# the side-by-side of this setting against the previous one (10, no draft in the prompt's pass).
DRAFT_TOKENS = 6
# Sequences decoded together. They share one unified KV cache of n_ctx cells (admission is by free
# cells), so more slots cost no memory; 16 measured best for one-sentence edits on 2 cores
# (benchmarks/results/assist_serve.md).
PARALLEL = 16
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


def shared_prefix(toks: list[list[int]]) -> int:
    """How many leading tokens all the prompts share (each keeps at least its last token of its own)."""
    common = 0
    while all(len(t) > common + 1 for t in toks) and len({t[common] for t in toks}) == 1:
        common += 1
    return common


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
    reports_each = True  # generate(on_done=...) hears of each prompt as it ends

    def __init__(
        self,
        path: Path,
        gguf_file: str,
        stop_token: str,
        device: str = "cpu",
        threads: int | None = None,
        n_ctx: int = 2048,
        parallel: int = PARALLEL,
        draft_tokens: int = DRAFT_TOKENS,
        lora_file: str | None = None,
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
        cparams.n_seq_max, cparams.kv_unified = self.parallel + 1, True  # + the shared-prefix sequence
        self.ctx = _internals.LlamaContext(model=self.model, params=cparams, verbose=False)
        self.lora = None
        if lora_file:
            self._attach_lora(path / lora_file)
        self.n_batch = 512
        self.batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        self.n_vocab = self.model.n_vocab()
        self.tokenizer = ChatTokenizer(path)
        self.stop_ids = {self.model.token_eos(), self.model.token_eot(), *self.tokenize(stop_token)} - {-1}
        self.lock = threading.Lock()  # one context: requests take turns (batches are decoded together)
        self._cached: list[int] = []  # sequence 0's tokens in the KV cache
        self.prefix_cache = True  # reuse the cached common prefix of the previous request
        self.draft_opening = True  # the prompt's pass already verifies a draft of the answer's first tokens

    def _attach_lora(self, lora: Path) -> None:
        """Apply a LoRA adapter (llama.cpp's GGUF LoRA format) at run time, at scale 1: the base
        weights stay as they are in the model file and the adapter's two small matrices add their
        product on every forward pass (llama.cpp's ``--lora``)."""
        import ctypes

        lc = self.llama_cpp
        if not lora.is_file():
            raise EdgewriteError(f"{lora} is missing; re-run `edgewrite quantize`")
        self.lora = lc.llama_adapter_lora_init(self.model.model, str(lora).encode("utf-8"))
        if not self.lora:
            raise EdgewriteError(
                f"llama.cpp could not load the LoRA adapter {lora} (corrupt, or made for another base model?)"
            )
        adapters = (lc.llama_adapter_lora_p_ctypes * 1)(self.lora)
        scales = (ctypes.c_float * 1)(1.0)
        if lc.llama_set_adapters_lora(self.ctx.ctx, adapters, 1, scales) != 0:
            raise EdgewriteError(f"llama.cpp could not apply the LoRA adapter {lora} to its context")

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

    def teacher_forced_logits(self, tokens: list[int], start: int) -> list[Any]:
        """The logits after each of ``tokens[start:-1]`` (each predicting the next token), one fresh
        evaluation of the whole sequence: what the model would choose at each step of a given answer."""
        with self.lock:
            self.llama_cpp.llama_memory_clear(self.ctx.memory, True)
            self._cached = []
            out = []
            items = [(t, i, 0, i >= start) for i, t in enumerate(tokens[:-1])]
            for first in range(0, len(items), self.n_batch):  # a view is overwritten by the next chunk: copy
                rows = self._decode(items[first : first + self.n_batch])
                out += [rows[i].copy() for i in sorted(rows)]
            self.llama_cpp.llama_memory_clear(self.ctx.memory, True)
        return out

    # ------------------------------------------------------------------ one request
    def _steps(self, prompt: list[int], limit: int, source: list[int] | None) -> Iterator[tuple[list[int], float]]:
        """Yield (new tokens, time) as they are accepted; return the finish reason. Sequence 0, with the
        cached prefix reused and copy-speculation when a source text is known.

        Each pass evaluates the tokens not yet in the cache (the prompt's own tail first, then the last
        chosen token) plus draft tokens copied from the source, and keeps the drafts that greedy decoding
        would have chosen. The first pass already carries a draft (the source's opening tokens, a guess
        at the answer's first tokens), so an edit that starts as its input did saves a whole pass."""
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
        self._cached = list(prompt[:common])
        drafter = CopyDrafter(source or []) if self.draft_tokens and source else None
        out: list[int] = []
        pending, pos = list(prompt[common:]), common  # tokens to put in the cache, from position pos
        while True:
            n = len(pending)
            room = min(self.draft_tokens, limit - len(out), self.n_ctx - (pos + n) - 1)
            if not out and not self.draft_opening:
                room = 0
            draft = drafter.propose(out, room) if drafter and room > 0 else []
            items = [(t, pos + i, 0, i == n - 1) for i, t in enumerate(pending)]
            items += [(d, pos + n + i, 0, True) for i, d in enumerate(draft)]
            rows = self._decode(items)
            preds = [self._argmax(rows[n - 1 + i]) for i in range(len(draft) + 1)]
            self._cached += pending
            pos += n
            accepted = 0
            while accepted < len(draft) and preds[accepted] == draft[accepted]:
                accepted += 1
            # preds[:accepted] are verified drafts (already in the cache); preds[accepted] is the next
            # token, not yet in it: exactly what plain greedy decoding emits, in order
            for j, tok in enumerate(preds[: accepted + 1]):
                if tok in self.stop_ids:
                    self._forget(0, pos)
                    return "stop"
                out.append(tok)
                if j < accepted:
                    self._cached.append(tok)
                    pos += 1
                yield [tok], time.perf_counter() - t0
                if len(out) >= limit or (j == accepted and pos + 1 >= self.n_ctx):
                    self._forget(0, pos)
                    return "length"
            self._forget(0, pos)  # drop the rejected drafts' cache entries
            pending = [preds[accepted]]

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
    def _batched(self, toks: list[list[int]], limit: int, on_done: Any = None) -> list[Generation]:
        """Continuous batching: up to ``parallel`` sequences decode together, one token each per
        ``llama_decode``; when one finishes, its slot and KV cells go to the next waiting prompt, whose
        prompt tokens are evaluated in the same ``llama_decode`` as the others' next tokens. The prompts'
        common prefix (chat template + instruction) is evaluated once into a prefix sequence and shared
        with every slot (``llama_memory_seq_cp``). A prompt is admitted only when its own tokens plus
        ``limit`` new ones fit in the free KV cells (the cache is unified: one pool of ``n_ctx`` cells),
        so no sequence is ever cut short by another. Waiting prompts are admitted shortest first (short
        edits return sooner, and the mean wait drops); ``on_done(i, generation)`` hears of each request as
        soon as it ends."""
        lc = self.llama_cpp
        mem = self.ctx.memory
        lc.llama_memory_clear(mem, True)
        self._cached = []
        common = shared_prefix(toks)
        prefix_seq = self.parallel  # the context has parallel + 1 sequences; the last holds the prefix
        t0 = time.perf_counter()
        if common:
            self._decode([(t, i, prefix_seq, False) for i, t in enumerate(toks[0][:common])])
        capacity = self.n_ctx - common
        need = [len(t) - common + limit for t in toks]
        waiting = sorted(range(len(toks)), key=lambda r: len(toks[r]))
        free_slots = list(range(self.parallel))[::-1]
        slot_of: dict[int, int] = {}  # request -> slot (sequence id)
        used = 0
        cur: dict[int, int] = {}
        pos: dict[int, int] = {}
        out: dict[int, list[int]] = {r: [] for r in range(len(toks))}
        finish: dict[int, str] = {}
        first: dict[int, float] = {}
        ended: dict[int, float] = {}
        results: dict[int, Generation] = {}
        while waiting or cur:
            items: list[tuple[int, int, int, bool]] = []
            owners: list[tuple[int, bool]] = []  # (request, is it that request's logits row)
            for r in list(cur):
                items.append((cur[r], pos[r], slot_of[r], True))
                owners.append((r, True))
            admitted = []
            while waiting and free_slots and used + need[waiting[0]] <= capacity:
                r = waiting.pop(0)
                s = slot_of[r] = free_slots.pop()
                used += need[r]
                if common:
                    lc.llama_memory_seq_cp(mem, prefix_seq, s, 0, common)
                tail = toks[r][common:]
                for i, tok in enumerate(tail):
                    last = i == len(tail) - 1
                    items.append((tok, common + i, s, last))
                    owners.append((r, last))
                admitted.append(r)
            if not items:
                raise EdgewriteError("llama.cpp: a prompt does not fit the context (internal budget error)")
            rows = self._decode(items)
            now = time.perf_counter()
            for i, (r, is_row) in enumerate(owners):
                if not is_row:
                    continue
                if r in cur:  # a running sequence: its token at pos[r] is now in the cache
                    pos[r] += 1
                else:  # just admitted: its prompt is in the cache
                    pos[r] = len(toks[r])
                cur[r] = self._argmax(rows[i])
                first.setdefault(r, now)
            for r in list(cur):
                tok = cur[r]
                if tok in self.stop_ids:
                    finish[r] = "stop"
                elif len(out[r]) >= limit or pos[r] + 1 >= self.n_ctx:
                    finish[r] = "length"
                else:
                    out[r].append(tok)
                    if len(out[r]) < limit:
                        continue
                    finish[r] = "length"
                del cur[r]
                ended[r] = now
                s = slot_of[r]
                self._forget(s)  # its cells go back to the pool (the shared prefix stays with the prefix seq)
                free_slots.append(s)
                used -= need[r]
                results[r] = Generation(
                    self.model.detokenize(out[r]).decode("utf-8", errors="replace"),
                    len(toks[r]),
                    len(out[r]),
                    first[r] - t0,
                    ended[r] - first[r],
                    finish[r],
                )
                if on_done is not None:
                    on_done(r, results[r])
        lc.llama_memory_clear(mem, True)
        return [results[r] for r in range(len(toks))]

    # ------------------------------------------------------------------ the Runtime protocol
    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int = 128,
        sources: list[str] | None = None,
        on_done: Any = None,
    ) -> list[Generation]:
        """Greedy answers. One prompt: prefix reuse and copy-speculation from ``sources`` (the texts being
        edited); several: continuously batched, ``parallel`` sequences at a time, ``on_done(i, generation)``
        called as each one ends (a prompt too long to share the context is decoded alone afterwards)."""
        with self.lock:
            if len(prompts) == 1:
                return [self._one(prompts[0], max_new_tokens, sources[0] if sources else None)]
            toks = [self.tokenize(p) for p in prompts]
            fits = [i for i, t in enumerate(toks) if len(t) + max_new_tokens + 1 < self.n_ctx]
            results: dict[int, Generation] = {}
            if fits:
                ends = (lambda j, g: on_done(fits[j], g)) if on_done is not None else None
                results.update(zip(fits, self._batched([toks[i] for i in fits], max_new_tokens, ends), strict=True))
            for i in range(len(prompts)):  # a prompt too long to share the context: on its own
                if i not in results:
                    results[i] = self._one(prompts[i], max_new_tokens, None)
            return [results[i] for i in range(len(prompts))]

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
        if self.lora:
            self.llama_cpp.llama_adapter_lora_free(self.lora)
            self.lora = None
        self.model.close()
