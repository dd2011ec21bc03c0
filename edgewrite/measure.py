"""The measurements a comparison of two artifacts stands on, used by `edgewrite bench` and the benchmark
scripts alike:

- ``agreement``: how closely an export follows its fp32 parent, teacher-forced on the parent's own
  answers (the export's argmax against each answer token, and whole answers kept). Quality scores on a
  few hundred rows cannot tell a 98 % export from a 100 % one; this can, because it reads every token.
- ``compare_outputs``: two runs on the same rows, paired: the share of rows that differ and the
  bootstrap difference of each task's headline score. Two runs of *one* artifact (another batch size,
  another day) give the noise floor under any comparison of two artifacts.
- ``memory_bandwidth`` / ``decode_bound``: decoding one token reads every weight once, so decode tok/s
  can never pass bandwidth / weight bytes; a runtime's share of that bound says how much is left to gain.
- ``interleaved``: time several ways of doing the same thing taking turns item by item, the order
  rotated, so a slow minute on a shared machine falls on all of them alike.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".gguf", ".onnx.data", ".safetensors", ".onnx")


def _log_softmax_at(row: Any, target: int) -> float:
    import numpy as np

    row = np.asarray(row, dtype=np.float64)
    top = row.max()
    return float(row[target] - top - np.log(np.exp(row - top).sum()))


def answer_logits(runtime: Any, prompt_ids: list[int], answer: list[int]) -> list[Any]:
    """The runtime's next-token logits before each answer token: one teacher-forced pass where the runtime
    offers it (llama.cpp), else one evaluation per token."""
    if hasattr(runtime, "teacher_forced_logits"):
        rows = runtime.teacher_forced_logits(prompt_ids + answer, len(prompt_ids) - 1)
        if len(rows) >= len(answer):
            return list(rows[: len(answer)])
    if not hasattr(runtime, "next_token_logits"):
        from edgewrite.errors import EdgewriteError

        raise EdgewriteError(f"{getattr(runtime, 'name', 'this runtime')} gives no token probabilities to compare")
    return [runtime.next_token_logits(prompt_ids + answer[:k]) for k in range(len(answer))]


def agreement(runtime: Any, rows: Sequence[Mapping[str, Any]], stop_token: str, prompt_style: str = "chat") -> dict:
    """Teacher-forced agreement with a parent's answers. ``rows``: ``task``, ``source``, the parent's
    ``raw_output`` and ``finish`` (a bench rows file holds them). Per task and overall: the share of answer
    tokens (the end-of-turn included where the parent stopped) on which this runtime's argmax is the
    parent's token, the share of whole answers it would reproduce token for token, and the mean negative
    log-likelihood of the parent's tokens. The answers are retokenized from text, as a user's request
    would be; a degenerate answer (runs of newlines) may retokenize into other tokens than it was made of."""
    import numpy as np

    from edgewrite.tasks import TASKS, build_prompt

    tokens: dict[str, int] = defaultdict(int)
    same: dict[str, int] = defaultdict(int)
    whole: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    nll: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        task = r["task"]
        prompt = runtime.tokenize(
            build_prompt(runtime.tokenizer, TASKS[task].default_instruction, r["source"], prompt_style)
        )
        # the end-of-turn is part of the answer only where the parent stopped (not where it was cut off)
        answer = runtime.tokenize(r["raw_output"] + (stop_token if r.get("finish", "stop") == "stop" else ""))
        hits = 0
        for row, target in zip(answer_logits(runtime, prompt, answer), answer, strict=True):
            hits += int(np.asarray(row).argmax() == target)
            nll[task].append(-_log_softmax_at(row, target))
        tokens[task] += len(answer)
        same[task] += hits
        whole[task] += hits == len(answer)
        count[task] += 1
    if not count:
        return {}
    per_task = {
        t: {
            "token_agreement": round(same[t] / tokens[t], 4),
            "answers_kept": round(whole[t] / count[t], 3),
            "nll": round(statistics.mean(nll[t]), 4),
            "rows": count[t],
        }
        for t in sorted(count)
    }
    return {
        "token_agreement": round(sum(same.values()) / sum(tokens.values()), 4),
        "answers_kept": round(sum(whole.values()) / sum(count.values()), 3),
        "nll": round(statistics.mean([x for v in nll.values() for x in v]), 4),
        "answer_tokens": sum(tokens.values()),
        "rows": sum(count.values()),
        "tasks": per_task,
    }


def parent_rows(rows: Sequence[Mapping[str, Any]], per_task: int, seed: int = 7) -> list[dict]:
    """A seeded sample of ``per_task`` rows of each task from a bench rows file's records (``set`` is
    ``task/name``), in task order: the rows ``agreement`` reads."""
    import random

    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    picked: dict[str, list[dict]] = defaultdict(list)
    for r in shuffled:
        task = r["set"].split("/")[0]
        if len(picked[task]) < per_task and r.get("raw_output") is not None:
            picked[task].append({**r, "task": task})
    return [r for task in sorted(picked) for r in picked[task]]


def compare_outputs(
    sets: list,
    a: Mapping[str, list[str]],
    b: Mapping[str, list[str]],
    scorers: tuple[Any, Any] | None = None,
    headlines: bool = False,
) -> dict[str, Any]:
    """Two runs' outputs on the same ``sets`` (`evaluate.gather`), paired row by row: the share of rows
    whose text differs (overall and per task) and the paired-bootstrap difference (a - b) of each task's
    headline and of their mean. ``scorers``: the two runs' `evaluate.headline_scorers`, when the caller
    compares one run with many. With ``headlines``, each run's headline per task and the lower as a share
    of the higher (for two runs of one artifact: the noise floor)."""
    from edgewrite.bootstrap import paired
    from edgewrite.evaluate import headline_scorers, score_outputs

    sa, sb = scorers or (headline_scorers(sets, dict(a)), headline_scorers(sets, dict(b)))
    diff = paired(sa, sb)
    per_task: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in sets:
        per_task[s.spec.task][0] += sum(x != y for x, y in zip(a[s.key], b[s.key], strict=True))
        per_task[s.spec.task][1] += len(s.rows)
    changed, n = sum(d for d, _ in per_task.values()), sum(m for _, m in per_task.values())
    result: dict[str, Any] = {
        "differ": round(changed / max(n, 1), 4),
        "differ_per_task": {t: round(d / max(m, 1), 4) for t, (d, m) in per_task.items()},
        "delta": {k: v.as_dict() for k, v in diff.items()},
    }
    if headlines:
        ha = score_outputs(sets, dict(a))["headline"]
        hb = score_outputs(sets, dict(b))["headline"]
        result["headline"] = {"a": ha, "b": hb}
        result["lower_over_higher_pct"] = {
            t: round(min(ha[t], hb[t]) / max(ha[t], hb[t]) * 100, 1) for t in ha if max(ha[t], hb[t]) > 0
        }
    return result


def memory_bandwidth(threads: int = 1, mb: int = 256, repeats: int = 5) -> float:
    """GB/s moved (bytes read + written) copying one ``mb`` MB array per thread, best of ``repeats``."""
    import numpy as np

    srcs = [np.ones(mb * 2**20 // 8) for _ in range(threads)]
    dsts = [np.empty_like(s) for s in srcs]
    best = 0.0
    for _ in range(repeats):
        ts = [threading.Thread(target=np.copyto, args=(d, s)) for d, s in zip(dsts, srcs, strict=True)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        best = max(best, 2 * mb * 2**20 * threads / (time.perf_counter() - t0) / 1e9)
    return round(best, 2)


def weight_bytes(path: Path | str, manifest: Mapping[str, Any]) -> int:
    """Bytes of weights read per decoded token: the artifact's model files as its manifest lists them."""
    return sum(v["bytes"] for n, v in manifest.get("files", {}).items() if n.endswith(WEIGHT_SUFFIXES))


def decode_bound(weight_bytes: int, bandwidth_gbs: float) -> float | None:
    """The most tokens per second a decoder can produce when each token reads every weight once."""
    if weight_bytes <= 0 or bandwidth_gbs <= 0:
        return None
    return bandwidth_gbs * 1e9 / weight_bytes


def bound_share(decode_tok_s: float | None, weight_bytes: int, bandwidth_gbs: float) -> float | None:
    """Measured decode speed as a share of ``decode_bound`` (1.0: the bus is the only limit left)."""
    bound = decode_bound(weight_bytes, bandwidth_gbs)
    if not decode_tok_s or not bound:
        return None
    return round(decode_tok_s / bound, 3)


@dataclass(frozen=True)
class Timed:
    ms: float
    result: Any


def interleaved(
    runs: Mapping[str, Callable[[Any], Any]],
    items: Sequence[Any],
    rounds: int = 1,
    warmup: bool = True,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, list[Timed]]:
    """Call every run on every item, the runs taking turns item by item with the order rotated (item i of
    round k starts at run (i + k) mod n), so drift in the machine's speed is shared. With ``warmup`` each
    run first does the first item untimed. Returns each run's timings (and results) in item order, round
    after round."""
    names = list(runs)
    if warmup and items:
        for name in names:
            runs[name](items[0])
    out: dict[str, list[Timed]] = {name: [] for name in names}
    for k in range(rounds):
        for i, item in enumerate(items):
            shift = (i + k) % len(names)
            for name in names[shift:] + names[:shift]:
                t0 = time.perf_counter()
                result = runs[name](item)
                out[name].append(Timed((time.perf_counter() - t0) * 1000, result))
        if on_round:
            on_round(k + 1)
    return out


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0-1) with linear interpolation between order statistics, as numpy's default; None
    for no values."""
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, float | None]:
    """Median, 95th percentile and range of a list of timings."""
    if not values:
        return {"p50": None, "p95": None, "min": None, "max": None}
    return {
        "p50": round(percentile(list(values), 0.5), 2),
        "p95": round(percentile(list(values), 0.95), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }
