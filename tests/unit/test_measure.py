"""The package's measurement helpers: interleaved timing, percentiles, the bandwidth bound and the
paired comparison of two runs (the noise floor when both runs are one artifact)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgewrite.measure import (
    bound_share,
    compare_outputs,
    decode_bound,
    interleaved,
    memory_bandwidth,
    parent_rows,
    percentile,
    summary,
    weight_bytes,
)
from tests.conftest import TASK_ROWS, write_jsonl


def test_interleaved_rotates_who_goes_first_and_keeps_every_result() -> None:
    calls: list[tuple[str, int]] = []

    def run(name: str):  # noqa: ANN202
        def f(item: int) -> int:
            calls.append((name, item))
            return item * 10

        return f

    timed = interleaved({"a": run("a"), "b": run("b"), "c": run("c")}, [1, 2, 3], rounds=2)
    warm, measured = calls[:3], calls[3:]
    assert warm == [("a", 1), ("b", 1), ("c", 1)]  # one untimed warm-up each
    firsts = [measured[i][0] for i in range(0, len(measured), 3)]
    assert firsts == ["a", "b", "c", "b", "c", "a"]  # item i of round k starts at run (i + k) mod 3
    assert all(len(v) == 6 for v in timed.values())
    assert [t.result for t in timed["b"]] == [10, 20, 30, 10, 20, 30]
    assert all(t.ms >= 0 for v in timed.values() for t in v)


def test_interleaved_times_each_call_on_its_own() -> None:
    timed = interleaved({"slow": lambda _: time.sleep(0.02), "fast": lambda _: None}, [0, 1], warmup=False)
    assert min(t.ms for t in timed["slow"]) >= 20 > max(t.ms for t in timed["fast"])


def test_percentile_interpolates_like_numpy_and_summary_names_the_range() -> None:
    import numpy as np

    values = [5.0, 1.0, 3.0, 9.0, 7.0, 2.0]
    for q in (0.0, 0.25, 0.5, 0.9, 0.95, 1.0):
        assert percentile(values, q) == pytest.approx(float(np.quantile(values, q)))
    assert percentile([], 0.5) is None
    assert summary(values) == {"p50": 4.0, "p95": 8.5, "min": 1.0, "max": 9.0}


def test_the_decode_bound_is_bandwidth_over_the_weights_read_per_token() -> None:
    manifest = {"files": {"model.gguf": {"bytes": 100_000_000}, "tokenizer.json": {"bytes": 2_000_000}}}
    assert weight_bytes(Path("x"), manifest) == 100_000_000  # the tokenizer is not read per token
    assert decode_bound(100_000_000, 10.0) == pytest.approx(100.0)  # 10 GB/s over 100 MB: 100 tok/s
    assert bound_share(25.0, 100_000_000, 10.0) == 0.25
    assert bound_share(None, 100_000_000, 10.0) is None and decode_bound(0, 10.0) is None


def test_memory_bandwidth_is_measured() -> None:
    gbs = memory_bandwidth(1, mb=16, repeats=2)
    assert 0.1 < gbs < 10_000


def test_parent_rows_samples_per_task_seeded_and_skips_rows_without_an_answer() -> None:
    rows = [
        {"set": f"{t}/x", "id": f"{t}{i}", "source": "s", "raw_output": "o"}
        for t in ("grammar", "clarity")
        for i in range(9)
    ]
    rows.append({"set": "grammar/x", "id": "none", "source": "s", "raw_output": None})
    picked = parent_rows(rows, 4)
    assert [r["task"] for r in picked] == ["clarity"] * 4 + ["grammar"] * 4
    assert picked == parent_rows(rows, 4) and len({r["id"] for r in picked}) == 8  # seeded, no repeats
    assert parent_rows(rows, 4, seed=1) != picked and all(r["id"] != "none" for r in parent_rows(rows, 20))


def _sets(tmp_path: Path) -> list:
    from edgewrite.evaluate import gather

    root = tmp_path / "data"
    for task, folder in (("paraphrase", "stsb"), ("simplification", "asset")):
        pairs = TASK_ROWS[task] * 4
        rows = [{"task": task, "source": s, "references": [r], "id": f"{task}-{i}"} for i, (s, r) in enumerate(pairs)]
        write_jsonl(root / folder / "dev.jsonl", rows)
    return gather(root, ["paraphrase", "simplification"], "dev", None, headline_only=True)


def test_two_identical_runs_differ_nowhere_and_their_difference_is_zero(tmp_path: Path) -> None:
    sets = _sets(tmp_path)
    refs = {s.key: [r["references"][0] for r in s.rows] for s in sets}
    same = compare_outputs(sets, refs, dict(refs), headlines=True)
    assert same["differ"] == 0 and set(same["differ_per_task"].values()) == {0}
    assert all(d["value"] == 0 and d["lo"] == 0 == d["hi"] for d in same["delta"].values())
    assert set(same["lower_over_higher_pct"].values()) == {100.0}


def test_a_run_that_copies_its_input_is_worse_than_one_that_matches_the_references(tmp_path: Path) -> None:
    sets = _sets(tmp_path)
    refs = {s.key: [r["references"][0] for r in s.rows] for s in sets}
    copy = {s.key: [r["source"] for r in s.rows] for s in sets}
    half = {k: [c if i % 2 else r for i, (r, c) in enumerate(zip(refs[k], copy[k], strict=True))] for k in refs}
    found = compare_outputs(sets, refs, copy, headlines=True)
    assert found["differ"] == 1.0 and found["delta"]["mean"]["lo"] > 0  # references beat copying, surely
    assert all(v < 100 for v in found["lower_over_higher_pct"].values())
    partly = compare_outputs(sets, refs, half)
    assert partly["differ"] == 0.5 and "headline" not in partly
    assert 0 < partly["delta"]["mean"]["value"] < found["delta"]["mean"]["value"]
