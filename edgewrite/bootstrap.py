"""Paired bootstrap confidence intervals over the field's corpus-level metrics.

The idea is sacrebleu's paired bootstrap (Koehn 2004): draw the rows of an evaluation set with
replacement, recompute the *corpus* metric on each draw, and read the interval off the percentiles;
for a comparison, both systems are scored on the same draws and the difference is taken per draw.
sacrebleu only resamples its own metrics, so the loop over ours is here. It is fast because each
metric's per-row sufficient statistics are computed once (n-gram counts, edit lattices), and a
resample only sums or re-chooses them:

- SARI, BLEU, exact match: corpus score = f(sum of row statistics).
- GLEU: per row and reference the 10 statistics; a resampled corpus draws its references at each
  position as the JFLEG scorer does, over ``GLEU_DRAWS`` of its 500 seeded draws per resample.
- M2 F0.5: per row and annotator (correct, proposed, gold); the scorer's running annotator choice is
  replayed over each resampled sequence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgewrite import metrics

RESAMPLES = 1000
SEED = 12345
GLEU_DRAWS = 10  # reference draws averaged per resample (the point estimate uses all 500)


class Scorer:
    """A corpus metric over fixed outputs, computable on any resample of its rows (0-100)."""

    n: int

    def value(self) -> float:
        return float(self.resampled(np.arange(self.n)[None, :])[0])

    def resampled(self, idx: np.ndarray) -> np.ndarray:  # (B, N) row indices -> (B,) scores
        raise NotImplementedError


class SumScorer(Scorer):
    """Metrics whose corpus score is a function of summed row statistics."""

    def __init__(self, stats: Sequence[Sequence[float]], from_totals: Any) -> None:
        self.stats = np.asarray(stats, dtype=np.float64)
        self.n = len(self.stats)
        self.from_totals = from_totals

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        totals = self.stats[idx].sum(axis=1)  # (B, K)
        return np.asarray(self.from_totals(totals), dtype=np.float64)


def _sari_totals(totals: np.ndarray) -> np.ndarray:
    """Vectorized ``metrics.sari_from_totals`` mean over add/keep/del (B, 36) -> (B,)."""
    t = totals.reshape(len(totals), 3, metrics.NGRAM_ORDER, 3)
    correct, sys_total, ref_total = t[..., 0], t[..., 1], t[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(sys_total > 0, correct / sys_total, 0.0)
        r = np.where(ref_total > 0, correct / ref_total, 0.0)
        f = np.where((p > 0) & (r > 0), 2 * p * r / (p + r), 0.0)
    return 100.0 * f.mean(axis=2).mean(axis=1)


def _bleu_totals(totals: np.ndarray) -> np.ndarray:
    return np.array([metrics.bleu_from_totals(row) for row in totals])


class IbleuScorer(Scorer):
    def __init__(self, to_refs: SumScorer, to_source: SumScorer, alpha: float = 0.9) -> None:
        self.to_refs, self.to_source, self.alpha, self.n = to_refs, to_source, alpha, to_refs.n

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        return self.alpha * self.to_refs.resampled(idx) - (1 - self.alpha) * self.to_source.resampled(idx)


class GleuScorer(Scorer):
    def __init__(self, stats: list[list[list[int]]], draws: list[list[int]]) -> None:
        self.stats = np.asarray(stats, dtype=np.float64)  # (N, R, 10)
        self.draws = np.asarray(draws, dtype=np.int64)  # (iterations, N)
        self.n = len(self.stats)

    @staticmethod
    def _from_totals(t: np.ndarray) -> np.ndarray:
        c, r = t[..., 0], t[..., 1]
        num, den = t[..., 2::2], t[..., 3::2]
        ok = (t != 0).all(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_prec = np.log(np.where(ok[..., None], num / den, 1.0)).sum(axis=-1) / metrics.NGRAM_ORDER
            bp = np.minimum(0.0, 1 - np.where(ok, r / c, 0.0))
        return np.where(ok, np.exp(bp + log_prec), 0.0)

    def value(self) -> float:
        rows = np.arange(self.n)
        totals = self.stats[rows[None, :], self.draws].sum(axis=1)  # (iterations, 10)
        return 100.0 * float(self._from_totals(totals).mean())

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        b = len(idx)
        out = np.zeros(b)
        for t in range(GLEU_DRAWS):
            which = (np.arange(b) * GLEU_DRAWS + t) % len(self.draws)
            totals = self.stats[idx, self.draws[which]].sum(axis=1)  # (B, 10)
            out += self._from_totals(totals)
        return 100.0 * out / GLEU_DRAWS


class M2Scorer(Scorer):
    def __init__(self, candidates: list[list[tuple[int, int, int]]], field: str = "f0.5") -> None:
        self.candidates, self.field, self.n = candidates, field, len(candidates)

    def value(self) -> float:
        return 100.0 * metrics.m2_from_counts(*metrics.m2_accumulate(self.candidates))[self.field]

    def resampled(self, idx: np.ndarray) -> np.ndarray:
        cands = self.candidates
        single = all(len(c) == 1 for c in cands)
        out = np.empty(len(idx))
        if single:  # one annotator per sentence: no choice to replay, plain sums
            arr = np.array([c[0] for c in cands], dtype=np.float64)
            totals = arr[idx].sum(axis=1)
            for b, (c, p, g) in enumerate(totals):
                out[b] = metrics.m2_from_counts(c, p, g)[self.field]
        else:
            for b, row in enumerate(idx):
                out[b] = metrics.m2_from_counts(*metrics.m2_accumulate([cands[i] for i in row]))[self.field]
        return 100.0 * out


def make_scorer(
    metric: str,
    sources: Sequence[str],
    outputs: Sequence[str],
    references: Sequence[Sequence[str]],
    m2: Sequence[metrics.M2Sentence] | None = None,
) -> Scorer:
    """A resamplable scorer for one metric on one evaluation set (texts already tokenized as the
    metric expects)."""
    if metric == "sari":
        stats = [metrics.sari_row_stats(s, o, r) for s, o, r in zip(sources, outputs, references, strict=True)]
        return SumScorer(stats, _sari_totals)
    if metric == "gleu":
        n_refs = min(len(r) for r in references)
        refs = [r[:n_refs] for r in references]
        return GleuScorer(metrics.gleu_row_stats(sources, outputs, refs), metrics.gleu_draws(len(outputs), n_refs))
    if metric in ("f0.5", "precision", "recall"):
        if m2 is None:
            raise ValueError("M2 metrics need the M2 gold sentences")
        return M2Scorer([metrics.m2_row_candidates(o, s) for o, s in zip(outputs, m2, strict=True)], metric)
    if metric == "bleu":
        return SumScorer(metrics.bleu_row_stats(outputs, references), _bleu_totals)
    if metric == "ibleu":
        return IbleuScorer(
            SumScorer(metrics.bleu_row_stats(outputs, references), _bleu_totals),
            SumScorer(metrics.bleu_row_stats(outputs, [[s] for s in sources]), _bleu_totals),
        )
    if metric == "exact_match":

        def norm(s: str) -> str:
            return " ".join(s.split())

        hits = [[float(norm(o) in {norm(r) for r in refs})] for o, refs in zip(outputs, references, strict=True)]
        n = len(hits)
        return SumScorer(hits, lambda totals: 100.0 * totals[:, 0] / n)
    raise ValueError(f"no bootstrap scorer for metric '{metric}'")


def resample_indices(n: int, key: str, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The same (resamples, n) draw for every system scored on the set named ``key``: that is what
    makes a comparison paired."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")
    return np.random.default_rng([seed, digest, n]).integers(0, n, size=(resamples, n))


@dataclass
class Interval:
    value: float
    lo: float
    hi: float

    def as_dict(self) -> dict[str, float]:
        return {"value": round(self.value, 4), "lo": round(self.lo, 4), "hi": round(self.hi, 4)}

    @property
    def significant(self) -> bool:
        """For a difference: the interval excludes zero."""
        return self.lo > 0 or self.hi < 0


def _percentiles(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def interval(scorers: dict[str, Scorer], resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """95 % intervals for each named scorer and for their mean (each set resampled on its own)."""
    draws = {k: s.resampled(resample_indices(s.n, k, resamples, seed)) for k, s in scorers.items()}
    out = {k: Interval(s.value(), *_percentiles(draws[k])) for k, s in scorers.items()}
    if scorers:
        mean_draw = np.mean([draws[k] for k in scorers], axis=0)
        out["mean"] = Interval(float(np.mean([out[k].value for k in scorers])), *_percentiles(mean_draw))
    return out


def paired(
    a: dict[str, Scorer], b: dict[str, Scorer], resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, Interval]:
    """Difference a - b per shared key and for the mean over them, with paired 95 % intervals."""
    keys = [k for k in a if k in b]
    deltas = {}
    out = {}
    for k in keys:
        if a[k].n != b[k].n:
            raise ValueError(f"{k}: {a[k].n} rows against {b[k].n}; a paired comparison needs the same rows")
        idx = resample_indices(a[k].n, k, resamples, seed)
        deltas[k] = a[k].resampled(idx) - b[k].resampled(idx)
        out[k] = Interval(a[k].value() - b[k].value(), *_percentiles(deltas[k]))
    if keys:
        out["mean"] = Interval(
            float(np.mean([out[k].value for k in keys])), *_percentiles(np.mean(list(deltas.values()), axis=0))
        )
    return out
