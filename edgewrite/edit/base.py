"""The edit result every editor returns (a model's answer cleaned, or a system's output), with its timings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Edit:
    output: str  # the edited text, cleaned
    raw: str  # what the system produced (a model's raw answer)
    prompt_tokens: int = 0
    new_tokens: int = 0
    ttft_s: float = 0.0  # time to the first token (a system that is not a model: its whole time)
    decode_s: float = 0.0
    finish: str = "stop"
    suggestions: list | None = None  # the individual edits with their confidences, where a policy made them


Done = Callable[[int, "Edit"], None]


def _report(done: Done | None, edits: list[Edit]) -> list[Edit]:
    if done is not None:
        for i, e in enumerate(edits):
            done(i, e)
    return edits
