"""What every runtime's generate returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    new_tokens: int
    ttft_s: float  # time to first token (prefill), seconds
    decode_s: float  # time for the remaining tokens, seconds
    finish: str  # "stop" (end-of-turn token) or "length"
