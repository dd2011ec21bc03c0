"""Paired bootstrap intervals over corpus metrics: what they must say on cases whose answer is known."""

import math
import random

import numpy as np
import pytest

from edgewrite import bootstrap, metrics

SOURCES = [f"the cat sat on the mat number {i} today ." for i in range(60)]
REFS = [[s.replace("sat", "sits").replace("today", "now")] for s in SOURCES]


def _sari(outputs: list[str]) -> bootstrap.Scorer:
    return bootstrap.make_scorer("sari", SOURCES, outputs, REFS)


def test_a_system_compared_with_itself_gives_zero_with_an_interval_containing_it() -> None:
    outputs = [r[0] if i % 2 else s for i, (s, r) in enumerate(zip(SOURCES, REFS, strict=True))]
    diff = bootstrap.paired({"t": _sari(outputs)}, {"t": _sari(outputs)})
    assert diff["t"].value == 0 and diff["t"].lo <= 0 <= diff["t"].hi and not diff["t"].significant


def test_a_known_better_system_gets_an_interval_above_zero() -> None:
    rng = random.Random(0)
    good = [r[0] if rng.random() < 0.8 else s for s, r in zip(SOURCES, REFS, strict=True)]
    poor = [r[0] if rng.random() < 0.2 else s for s, r in zip(SOURCES, REFS, strict=True)]
    diff = bootstrap.paired({"t": _sari(good)}, {"t": _sari(poor)})
    assert diff["t"].value > 0 and diff["t"].lo > 0 and diff["t"].significant
    reverse = bootstrap.paired({"t": _sari(poor)}, {"t": _sari(good)})
    assert reverse["t"].hi < 0 and math.isclose(reverse["t"].value, -diff["t"].value)


def test_two_systems_equally_good_on_different_rows_are_not_called_different() -> None:
    a = [r[0] if i % 4 in (0, 1) else s for i, (s, r) in enumerate(zip(SOURCES, REFS, strict=True))]
    b = [r[0] if i % 4 in (1, 2) else s for i, (s, r) in enumerate(zip(SOURCES, REFS, strict=True))]
    diff = bootstrap.paired({"t": _sari(a)}, {"t": _sari(b)})
    assert abs(diff["t"].value) < 1e-9 and diff["t"].lo < 0 < diff["t"].hi


@pytest.mark.parametrize("metric", ["sari", "bleu", "ibleu", "exact_match"])
def test_scorer_values_equal_the_metric_functions(metric: str) -> None:
    outputs = [r[0] if i % 3 else s for i, (s, r) in enumerate(zip(SOURCES, REFS, strict=True))]
    scorer = bootstrap.make_scorer(metric, SOURCES, outputs, REFS)
    want = {
        "sari": lambda: metrics.sari(SOURCES, outputs, REFS),
        "bleu": lambda: metrics.bleu(outputs, REFS),
        "ibleu": lambda: metrics.ibleu(SOURCES, outputs, REFS),
        "exact_match": lambda: metrics.exact_match(outputs, REFS),
    }[metric]()
    assert math.isclose(scorer.value(), want, abs_tol=1e-9)
    ci = bootstrap.interval({"s": scorer})["s"]
    assert ci.lo <= ci.value <= ci.hi


def test_gleu_and_m2_scorers_equal_the_metric_functions() -> None:
    refs4 = [r * 2 + [s, r[0]] for s, r in zip(SOURCES, REFS, strict=True)]
    outputs = [r[0] if i % 2 else s for i, (s, r) in enumerate(zip(SOURCES, REFS, strict=True))]
    g = bootstrap.make_scorer("gleu", SOURCES, outputs, refs4)
    assert math.isclose(g.value() / 100, metrics.gleu(SOURCES, outputs, refs4), abs_tol=1e-12)
    m2 = metrics.parse_m2(
        "\n".join(f"S He go to school day {i} .\nA 1 2|||SVA|||goes|||REQUIRED|||-NONE-|||0\n" for i in range(30))
    )
    hyp = [f"He goes to school day {i} ." if i % 3 else f"He go to school day {i} ." for i in range(30)]
    s = bootstrap.make_scorer("f0.5", [m.source for m in m2], hyp, [[""]] * 30, m2)
    assert math.isclose(s.value() / 100, metrics.m2_score(hyp, m2)["f0.5"], abs_tol=1e-12)


def test_resampling_is_seeded_per_set_and_fast() -> None:
    a = bootstrap.resample_indices(500, "task/set")
    assert np.array_equal(a, bootstrap.resample_indices(500, "task/set"))
    assert not np.array_equal(a, bootstrap.resample_indices(500, "task/other"))
    import time

    outputs = [r[0] if i % 2 else s for i, (s, r) in enumerate(zip(SOURCES, REFS, strict=True))] * 9
    scorer = bootstrap.make_scorer("sari", SOURCES * 9, outputs, REFS * 9)  # 540 rows
    t0 = time.perf_counter()
    bootstrap.interval({"s": scorer}, resamples=1000)
    assert time.perf_counter() - t0 < 10  # seconds, with cached row statistics (the bar)


def test_the_mean_interval_combines_the_tasks() -> None:
    rng = random.Random(3)
    good = {
        f"t{k}": _sari([r[0] if rng.random() < 0.7 else s for s, r in zip(SOURCES, REFS, strict=True)])
        for k in range(3)
    }
    poor = {
        f"t{k}": _sari([r[0] if rng.random() < 0.3 else s for s, r in zip(SOURCES, REFS, strict=True)])
        for k in range(3)
    }
    diff = bootstrap.paired(good, poor)
    assert math.isclose(diff["mean"].value, np.mean([diff[f"t{k}"].value for k in range(3)]))
    assert diff["mean"].significant
    with pytest.raises(ValueError, match="same rows"):
        bootstrap.paired(
            {"t": _sari([s for s in SOURCES])}, {"t": bootstrap.make_scorer("sari", SOURCES[:5], SOURCES[:5], REFS[:5])}
        )
