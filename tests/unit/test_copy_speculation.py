"""Copy-speculation's bookkeeping, exactly: with a deterministic stand-in for llama.cpp's forward pass
(the next token a function of every token in the KV cache up to that position), speculative decoding
must emit plain greedy decoding's tokens and finish reason, and the cache must hold exactly the tokens
emitted so far: no rejected draft left behind, no hole. The real runtime is tested on real dev rows in
tests/integration/test_runtime_paths.py, where batched kernels may flip near-ties."""

from __future__ import annotations

import numpy as np
import pytest

from edgewrite.runtimes.llamacpp import CopyDrafter, LlamaCppRuntime

VOCAB, STOP = 64, 63


class Cache:
    """What llama.cpp's KV cache of sequence 0 holds: position -> token, and a forward pass over it."""

    def __init__(self, answer_for: dict[tuple[int, ...], list[int]]) -> None:
        self.cells: dict[int, int] = {}
        self.answer_for = answer_for  # prompt -> the answer the "model" gives, then STOP
        self.passes = 0

    def next_token(self, upto: int) -> int:
        history = tuple(self.cells[p] for p in range(upto + 1))
        for prompt, answer in self.answer_for.items():
            n = len(prompt)
            if history[:n] == prompt and len(history) >= n:
                done = list(history[n:])
                want = answer + [STOP]
                if done == want[: len(done)] and len(done) < len(want):
                    return want[len(done)]
        return (sum(history) * 31 + len(history)) % (VOCAB - 1)  # off script: some deterministic token

    def decode(self, items: list[tuple[int, int, int, bool]]) -> dict[int, np.ndarray]:
        self.passes += 1
        first = items[0][1]
        assert sorted(self.cells) == list(range(first)), "the cache must hold every earlier position, nothing after"
        rows = {}
        for i, (tok, pos, seq, want) in enumerate(items):
            assert seq == 0 and pos == first + i
            self.cells[pos] = tok
            if want:
                rows[i] = np.eye(VOCAB, dtype=np.float32)[self.next_token(pos)]
        return rows

    def forget(self, seq: int, p0: int = 0) -> None:
        for p in [p for p in self.cells if p >= p0]:
            del self.cells[p]


def _runtime(cache: Cache, draft_tokens: int, n_ctx: int = 512) -> LlamaCppRuntime:
    rt = object.__new__(LlamaCppRuntime)  # the decoding loop only, on the stand-in cache
    rt.draft_tokens, rt.draft_opening, rt.prefix_cache = draft_tokens, True, True
    rt._cached, rt.n_ctx, rt.stop_ids = [], n_ctx, {STOP}
    rt._decode, rt._forget = cache.decode, cache.forget
    return rt


def _run(rt: LlamaCppRuntime, prompt: list[int], limit: int, source: list[int] | None) -> tuple[list[int], str]:
    out: list[int] = []
    gen = rt._steps(prompt, limit, source)
    try:
        while True:
            out += next(gen)[0]
    except StopIteration as stop:
        return out, stop.value


SOURCE = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
CASES = {
    "copied whole": SOURCE,
    "one word changed": [5, 6, 7, 40, 9, 10, 11, 12, 13, 14, 15],
    "a word inserted and one dropped": [5, 6, 41, 7, 8, 9, 11, 12, 13, 14, 15],
    "rewritten": [30, 31, 7, 8, 32, 33, 34, 35],
    "empty": [],
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("opening", [True, False])
def test_speculation_emits_greedy_decoding_s_tokens_and_keeps_the_cache_exact(case: str, opening: bool) -> None:
    answer = CASES[case]
    prefix = [1, 2, 3, 4]  # the template and instruction, the same for every sentence
    prompts = [tuple(prefix + [20 + i] + SOURCE + [50]) for i in range(3)]
    for limit in (64, 7, 1):
        plain_cache, spec_cache = Cache({p: answer for p in prompts}), Cache({p: answer for p in prompts})
        plain, spec = _runtime(plain_cache, 0), _runtime(spec_cache, 6)
        spec.draft_opening = opening
        for prompt in prompts:  # several requests in a row: the cached prefix is reused
            want = _run(plain, list(prompt), limit, SOURCE)
            got = _run(spec, list(prompt), limit, SOURCE)
            assert got == want, (case, limit)
            assert want[0] == answer[:limit] and want[1] == ("stop" if len(answer) < limit else "length")
            cells = sorted(spec_cache.cells)  # the prompt and the emitted tokens but the last, no more
            assert cells == list(range(len(cells))) and len(cells) <= len(prompt) + len(got[0])
        if case == "copied whole" and limit == 64:  # 12 tokens in 2-3 passes, not 12
            assert spec_cache.passes <= 3 * len(prompts) < plain_cache.passes


def test_speculation_stays_inside_the_context() -> None:
    prompt = [1, 2, 3, 20, *SOURCE, 50]
    cache = Cache({tuple(prompt): SOURCE})
    n_ctx = len(prompt) + 5
    got = _run(_runtime(cache, 6, n_ctx=n_ctx), prompt, 64, SOURCE)
    assert got == (SOURCE[:5], "length")
    assert max(cache.cells) < n_ctx


def test_the_drafter_walks_through_the_source() -> None:
    d = CopyDrafter([5, 6, 7, 5, 6, 8, 9])
    assert d.propose([], 3) == [5, 6, 7]
    assert d.propose([5, 6, 7, 5, 6], 2) == [8, 9]  # the latest match of "7 5 6", not the first "5 6"
    assert d.propose([99], 2) == []  # no match: no draft
