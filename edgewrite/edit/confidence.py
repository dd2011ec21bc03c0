"""How sure the model is of each edit it made, from the model itself (no second model).

For an edit, take the model's answer and the same answer with that one edit left out; both share their
tokens up to the point where they part. There the model chose the edit's token over the token that
keeps the text as it was: the confidence is p(edit) / (p(edit) + p(keep)) under the model's next-token
distribution at that point (0.5: no preference; near 1: the edit is the clear choice). The distributions
come from one teacher-forced pass over prompt + answer where the runtime offers it (llama.cpp), else one
next-token evaluation per edit (transformers, GPT-QModel, onnxruntime-genai); systems that are not models
(copy, Harper) have no confidence to give.
"""

from __future__ import annotations

from typing import Any

from edgewrite.edit.spans import Suggestion, located_suggestions
from edgewrite.errors import EdgewriteError

CONFIDENCE_RUNTIMES = ("llama.cpp (GGUF)", "transformers", "GPT-QModel", "onnxruntime-genai")


def _softmax_at(logits: Any, ids: list[int]) -> list[float]:
    import numpy as np

    row = np.asarray(logits, dtype=np.float64)
    row = np.exp(row - row.max())
    total = row.sum()
    return [float(row[i] / total) if 0 <= i < row.shape[0] else 0.0 for i in ids]


def _parting(a: list[int], b: list[int]) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def unit_confidences(runtime: Any, prompt: str, source: str, output: str) -> list[Suggestion]:
    """The suggestions that turn ``source`` into ``output`` (the model's answer to ``prompt``), each with
    its confidence."""
    found = located_suggestions(source, output)
    if not found:
        return []
    if not hasattr(runtime, "next_token_logits"):
        raise EdgewriteError(
            f"{getattr(runtime, 'name', 'this system')} gives no token probabilities, so its edits have no "
            f"confidence; runtimes that do: {', '.join(CONFIDENCE_RUNTIMES)}"
        )
    stops = sorted(getattr(runtime, "stop_ids", []) or [])
    prompt_ids = runtime.tokenize(prompt)
    answer = runtime.tokenize(output)

    def at(seq: list[int], k: int) -> list[int]:  # the token(s) a sequence continues with at k: ending = stopping
        return [seq[k]] if k < len(seq) else stops

    partings = []
    for s, a, b in found:
        if a < 0:
            partings.append(None)
            continue
        keep = runtime.tokenize(output[:a] + s.original + output[b:])
        k = _parting(answer, keep)
        partings.append((k, at(answer, k), at(keep, k)))
    rows: dict[int, Any] = {}
    wanted = sorted({p[0] for p in partings if p is not None})
    if hasattr(runtime, "teacher_forced_logits") and wanted:
        # one pass: the logits after each token of prompt[-1:] + answer, i.e. predicting answer[k] at row k
        logits = runtime.teacher_forced_logits(prompt_ids + answer + stops[:1], len(prompt_ids) - 1)
        rows = {k: logits[k] for k in wanted if k < len(logits)}
    for k in wanted:
        if k not in rows:
            rows[k] = runtime.next_token_logits(prompt_ids + answer[:k])
    out = []
    for (s, _, _), parting in zip(found, partings, strict=True):
        confidence = None
        if parting is not None and parting[1] and parting[2]:
            k, edit_ids, keep_ids = parting
            p_edit, p_keep = sum(_softmax_at(rows[k], edit_ids)), sum(_softmax_at(rows[k], keep_ids))
            confidence = round(p_edit / (p_edit + p_keep), 4) if p_edit + p_keep > 0 else 0.5
        out.append(Suggestion(s.start, s.end, s.original, s.replacement, s.kind, s.reason, confidence))
    return out
