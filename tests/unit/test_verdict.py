"""The verdict and ship logic on synthetic bench results: every branch, decided by the stored intervals."""

import json
from pathlib import Path

import pytest

from edgewrite.bench import SCHEMA
from edgewrite.report import comparison, recommended_artifact, verdict, write_report
from edgewrite.tasks import TASK_NAMES


def _cell(cid: str, kind: str, mean: float, p50: float | None = None, rss: float | None = None, path: str = "") -> dict:
    cell = {
        "id": cid,
        "artifact": path or cid,
        "label": cid.replace("_", " "),
        "kind": kind,
        "device": "-" if cid == "copy" else "cpu",
        "size_mb": 0.0 if cid == "copy" else 100.0,
        "quality": {
            "headline": {t: mean for t in TASK_NAMES},
            "headline_ci": {t: {"value": mean, "lo": mean - 1, "hi": mean + 1} for t in TASK_NAMES},
            "mean": mean,
            "mean_ci": {"value": mean, "lo": mean - 1, "hi": mean + 1},
            "sets": {},
            "headline_source": {t: "x sari" for t in TASK_NAMES},
        },
    }
    if p50 is not None:
        cell.update(edit_latency_ms={"p50": p50, "p95": 2 * p50}, peak_rss_mb=rss, decode_tok_s=100.0)
    return cell


def _cmp(a: str, b: str, value: float, half: float = 1.0, tasks: dict | None = None) -> dict:
    iv = {"value": value, "lo": value - half, "hi": value + half}
    return {"a": a, "b": b, "tasks": {t: (tasks or {}).get(t, iv) for t in TASK_NAMES}, "mean": iv}


def _doc(cells: list[dict], comparisons: list[dict]) -> dict:
    return {
        "schema": SCHEMA,
        "created": "now",
        "command": "test",
        "conditions": {"cpu": "test cpu", "cores": 2, "threads": 2, "rows": 10, "split": "dev", "versions": {}},
        "cells": cells,
        "comparisons": comparisons,
    }


COPY = _cell("copy", "", 30)
BASE = _cell("base", "base", 35, 1500, 900)
MERGED = _cell("tuned_fp32", "merged", 42, 1500, 900)
Q4 = _cell("tuned_q4", "quantized", 41.5, 300, 400)
ONNX = _cell("tuned_onnx", "quantized", 41.8, 200, 500)


def test_a_tuned_artifact_that_beats_copy_and_base_is_shipped_and_the_fastest_equal_one_wins() -> None:
    doc = _doc(
        [COPY, BASE, MERGED, Q4, ONNX],
        [
            *(_cmp(c["id"], "copy", 11) for c in (MERGED, Q4, ONNX)),
            *(_cmp(c["id"], "base", 6.5) for c in (MERGED, Q4, ONNX)),
            _cmp("tuned_q4", "tuned_fp32", -0.5),  # not significantly worse than the best
            {**_cmp("tuned_onnx", "tuned_fp32", -0.2), "differ": 0.4113},
        ],
    )
    (v,) = verdict(doc, None, None)
    assert v["ship"] == "tuned onnx"  # within the best's interval and the fastest
    assert "its output differs from the parent's on 41% of dev rows" in "\n".join(v["text"])
    assert v["vs_copy"]["mean"] == 1 and v["vs_base"]["mean"] == 1
    text = "\n".join(v["text"])
    assert "Worth it: yes" in text and "Budget" not in text
    assert "no significant loss on any task" in text  # against its fp32 parent


def test_latencies_within_noise_tie_and_the_simpler_system_wins() -> None:
    """A pre-pass variant 3 % 'faster' than its plain artifact is noise: the plain artifact ships."""
    pre = {**_cell("tuned_q4_pre", "quantized", 41.4, 291, 560), "pre": "harper"}
    doc = _doc(
        [COPY, BASE, MERGED, Q4, pre],
        [
            *(_cmp(c["id"], "copy", 11) for c in (MERGED, Q4, pre)),
            *(_cmp(c["id"], "base", 6.5) for c in (MERGED, Q4, pre)),
            _cmp("tuned_q4", "tuned_fp32", -0.5),
            _cmp("tuned_q4_pre", "tuned_fp32", -0.6),
        ],
    )
    assert verdict(doc, None, None)[0]["ship"] == "tuned q4"
    slow_plain = {**Q4, "edit_latency_ms": {"p50": 400, "p95": 800}}  # 37 % slower: no longer a tie
    doc["cells"] = [COPY, BASE, MERGED, slow_plain, pre]
    assert verdict(doc, None, None)[0]["ship"] == "tuned q4 pre"


def test_an_artifact_significantly_worse_than_the_best_is_not_shipped_even_if_faster() -> None:
    doc = _doc(
        [COPY, BASE, MERGED, ONNX],
        [_cmp("tuned_onnx", "tuned_fp32", -3.0), _cmp("tuned_fp32", "copy", 12), _cmp("tuned_fp32", "base", 7)],
    )
    (v,) = verdict(doc, None, None)
    assert v["ship"] == "tuned fp32"


def test_inside_the_interval_of_the_base_model_is_not_yet_worth_it() -> None:
    doc = _doc(
        [COPY, BASE, Q4],
        [_cmp("tuned_q4", "copy", 11), _cmp("tuned_q4", "base", 0.5, half=2.0)],
    )
    (v,) = verdict(doc, None, None)
    text = "\n".join(v["text"])
    assert "Worth it: not yet" in text and "no significant difference on" in text


def test_not_better_than_copy_is_a_no_and_worse_tasks_are_named() -> None:
    worse = {"grammar": {"value": -4.0, "lo": -6.0, "hi": -2.0}}
    doc = _doc([COPY, BASE, Q4], [_cmp("tuned_q4", "copy", 0.3, half=1.0, tasks=worse), _cmp("tuned_q4", "base", 5)])
    (v,) = verdict(doc, None, None)
    text = "\n".join(v["text"])
    assert "Worth it: no" in text and "significantly worse on grammar -4.0 [-6.0, -2.0]" in text
    doc = _doc([COPY, BASE, Q4], [_cmp("tuned_q4", "copy", 5, tasks=worse), _cmp("tuned_q4", "base", 5)])
    assert "Worth it: partly" in "\n".join(verdict(doc, None, None)[0]["text"])


def test_budgets_exclude_and_are_stated() -> None:
    doc = _doc(
        [COPY, BASE, MERGED, Q4],
        [_cmp("tuned_q4", "tuned_fp32", -0.5), _cmp("tuned_q4", "copy", 11), _cmp("tuned_q4", "base", 6)],
    )
    (v,) = verdict(doc, max_latency_ms=100, max_memory_mb=None)
    assert v["ship"] is None and "No tuned artifact on cpu fits the budget" in v["text"][0]
    (v,) = verdict(doc, max_latency_ms=None, max_memory_mb=450)
    assert v["ship"] == "tuned q4" and v["text"][-1] == "Budget: peak RSS ≤ 450 MB."


def test_a_bits_budget_ships_a_4_bit_artifact_held_to_the_best_model_s_quality() -> None:
    """With --max-bits 4 the 8-bit artifact cannot ship; a fast 4-bit one that is significantly worse than the
    fp32 model is not shipped either, even though it is not significantly worse than the best 4-bit one."""
    q8 = {**_cell("tuned_q8", "quantized", 41.9, 180, 420), "bits": 8}
    q4 = {**Q4, "bits": 4}
    q40 = {**_cell("tuned_gguf_Q4_0", "quantized", 40.4, 150, 400), "label": "tuned gguf Q4_0"}
    doc = _doc(
        [COPY, BASE, MERGED, q8, q4, q40],
        [
            *(_cmp(c["id"], "copy", 11) for c in (MERGED, q8, q4, q40)),
            *(_cmp(c["id"], "base", 6.5) for c in (MERGED, q8, q4, q40)),
            _cmp("tuned_q8", "tuned_fp32", -0.1),
            _cmp("tuned_q4", "tuned_fp32", -0.5),
            _cmp("tuned_gguf_Q4_0", "tuned_fp32", -1.6, half=1.0),  # significantly worse than fp32
            _cmp("tuned_gguf_Q4_0", "tuned_q4", -1.1, half=1.5),  # not significantly worse than the best 4-bit
        ],
    )
    assert verdict(doc, None, None)[0]["ship"] == "tuned q8"  # no budget: the fastest near the best
    (v,) = verdict(doc, None, None, max_bits=4)
    assert v["ship"] == "tuned q4"
    assert "Budget: ≤ 4 bits per weight." in v["text"]
    assert any(line.startswith("Without the budget: tuned q8") for line in v["text"])
    (v,) = verdict(doc, None, None, max_bits=2)
    assert v["ship"] is None and "--max-bits" in v["text"][0]


@pytest.mark.parametrize(
    ("cell", "bits"),
    [
        ({"kind": "quantized", "bits": 4, "label": "tuned gguf Q4_K_M"}, 4),
        ({"kind": "quantized", "bits": None, "label": "tuned gguf Q4_0"}, 4),
        ({"kind": "quantized", "bits": None, "label": "tuned gguf IQ4_NL"}, 4),
        ({"kind": "quantized", "bits": None, "label": "tuned gguf F16"}, 16),
        ({"kind": "merged", "bits": None, "label": "tuned fp32"}, 32),
    ],
)
def test_bits_per_weight_come_from_the_cell_or_the_llama_cpp_type(cell: dict, bits: int) -> None:
    from edgewrite.report import weight_bits

    assert weight_bits(cell) == bits


_HELPS = {"value": 2.0, "lo": 1.3, "hi": 2.7}
_HURTS = {"value": -0.8, "lo": -1.5, "hi": -0.1}


@pytest.mark.parametrize(
    ("tasks", "decision"),
    [
        ({"fluency": _HELPS}, "worth making the default"),
        (
            {"fluency": _HELPS, "simplification": _HURTS},
            "off by default (it hurts simplification); `--pre harper` for fluency work",
        ),
        ({}, "off by default (it helps no task)"),
    ],
)
def test_the_pre_pass_decision_is_stated_from_its_paired_intervals(tasks: dict, decision: str) -> None:
    pre = {**_cell("tuned_q4_pre", "quantized", 41.4, 600, 560), "pre": "harper", "artifact": "tuned_q4"}
    doc = _doc(
        [COPY, BASE, MERGED, Q4, pre],
        [
            *(_cmp(c["id"], "copy", 11) for c in (MERGED, Q4, pre)),
            *(_cmp(c["id"], "base", 6.5) for c in (MERGED, Q4, pre)),
            _cmp("tuned_q4", "tuned_fp32", -0.5),
            _cmp("tuned_q4_pre", "tuned_fp32", -0.6),
            _cmp("tuned_q4_pre", "tuned_q4", -0.1, tasks=tasks),
        ],
    )
    (v,) = verdict(doc, None, None)
    assert v["ship"] == "tuned q4"
    (line,) = [x for x in v["text"] if x.startswith("Pre-pass harper")]
    assert line.endswith(f"Decision: {decision}.")


def test_a_pre_pass_that_only_helps_stays_off_when_it_breaks_the_latency_budget() -> None:
    pre = {**_cell("tuned_q4_pre", "quantized", 41.4, 600, 560), "pre": "harper", "artifact": "tuned_q4"}
    doc = _doc(
        [COPY, BASE, MERGED, Q4, pre],
        [
            *(_cmp(c["id"], "copy", 11) for c in (MERGED, Q4, pre)),
            *(_cmp(c["id"], "base", 6.5) for c in (MERGED, Q4, pre)),
            _cmp("tuned_q4", "tuned_fp32", -0.5),
            _cmp("tuned_q4_pre", "tuned_fp32", -0.6),
            _cmp("tuned_q4_pre", "tuned_q4", -0.1, tasks={"fluency": _HELPS}),
        ],
    )
    p50 = Q4["edit_latency_ms"]["p50"]
    (v,) = verdict(doc, p50 + 1, None)
    assert v["ship"] == "tuned q4"
    (line,) = [x for x in v["text"] if x.startswith("Pre-pass harper")]
    assert line.endswith("over the budget); `--pre harper` for fluency work.")
    (line,) = [x for x in verdict(doc, None, None)[0]["text"] if x.startswith("Pre-pass harper")]
    assert line.endswith("Decision: worth making the default.")


def test_a_pre_pass_that_hurts_a_task_never_ships_on_a_faster_latency_sample() -> None:
    """The pre-pass only adds work: a lower p50 than its plain artifact is sampling noise, and a pre-pass
    the decision turns off (it hurts simplification) cannot ship; one that only helps can."""
    pre = {**_cell("tuned_q4_pre", "quantized", 41.4, 200, 560), "pre": "harper", "artifact": "tuned_q4"}
    cmps = [
        *(_cmp(c["id"], "copy", 11) for c in (MERGED, Q4, pre)),
        *(_cmp(c["id"], "base", 6.5) for c in (MERGED, Q4, pre)),
        _cmp("tuned_q4", "tuned_fp32", -0.5),
        _cmp("tuned_q4_pre", "tuned_fp32", -0.6),
    ]
    hurts = _cmp("tuned_q4_pre", "tuned_q4", -0.1, tasks={"fluency": _HELPS, "simplification": _HURTS})
    assert verdict(_doc([COPY, BASE, MERGED, Q4, pre], [*cmps, hurts]), None, None)[0]["ship"] == "tuned q4"
    helps = _cmp("tuned_q4_pre", "tuned_q4", -0.1, tasks={"fluency": _HELPS})
    assert verdict(_doc([COPY, BASE, MERGED, Q4, pre], [*cmps, helps]), None, None)[0]["ship"] == "tuned q4 pre"


def test_comparisons_are_read_in_either_direction() -> None:
    doc = _doc([COPY, Q4], [{**_cmp("copy", "tuned_q4", -5), "differ": 0.25}])
    flipped = comparison(doc, "tuned_q4", "copy")
    assert flipped["mean"] == {"value": 5, "lo": 4, "hi": 6} and flipped["differ"] == 0.25  # symmetric
    assert comparison(doc, "tuned_q4", "nothing") is None


def test_the_recommendation_is_written_and_read_back_for_assist_and_serve(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEWRITE_HOME", str(tmp_path / "home"))
    artifact = tmp_path / "q4"
    artifact.mkdir()
    (artifact / "manifest.json").write_text("{}")
    q4 = {**Q4, "artifact": str(artifact)}
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    doc = _doc([COPY, BASE, q4], [_cmp("tuned_q4", "copy", 11), _cmp("tuned_q4", "base", 6)])
    (bench_dir / "bench.json").write_text(json.dumps(doc))
    _, verdicts, page = write_report(bench_dir, None, None, None)
    assert verdicts[0]["artifact"] == str(artifact)
    assert json.loads((tmp_path / "home" / "recommended.json").read_text()) == {"cpu": str(artifact)}
    assert recommended_artifact("cpu") == str(artifact) and recommended_artifact("cuda") is None
    assert "Worth it: yes" in page.with_suffix(".md").read_text()
    (tmp_path / "home" / "recommended.json").write_text("[not a mapping]")
    assert recommended_artifact("cpu") is None  # a damaged file falls back to the default model


@pytest.mark.parametrize("bad", [0, -5])
def test_budgets_must_be_positive(tmp_path: Path, bad: float) -> None:
    from edgewrite.errors import EdgewriteError

    with pytest.raises(EdgewriteError, match="positive"):
        write_report(tmp_path, None, bad, None)


def _with_task(cell: dict, task: str, score: float) -> dict:
    quality = {**cell["quality"], "headline": {**cell["quality"]["headline"], task: score}}
    return {**cell, "quality": quality}


@pytest.mark.parametrize("others_clear", [True, False])
def test_a_faster_artifact_below_the_untuned_model_on_a_task_is_passed_over(others_clear: bool) -> None:
    """The product promises a model above copy and the untuned model on every task: among the near-best
    systems, one that falls below the untuned model on a task ships only if none clears them all."""
    onnx = {**_with_task(ONNX, "paraphrase", 34.0), "bits": 4}  # fastest and near-best, below the base's 35
    q4 = {**(Q4 if others_clear else _with_task(Q4, "coherence", 29.0)), "bits": 4}  # else below copy's 30
    doc = _doc(
        [COPY, BASE, MERGED, q4, onnx],
        [
            *(_cmp(c["id"], "copy", 11) for c in (MERGED, q4, onnx)),
            *(_cmp(c["id"], "base", 6.5) for c in (MERGED, q4, onnx)),
            _cmp("tuned_q4", "tuned_fp32", -0.5),
            _cmp("tuned_onnx", "tuned_fp32", -0.2),
        ],
    )
    (v,) = verdict(doc, None, None, max_bits=4)  # the fp32 model, which clears both, cannot ship
    text = "\n".join(v["text"])
    if others_clear:
        assert v["ship"] == "tuned q4"
        assert "Passed over: tuned onnx" in text and "below the untuned model on paraphrase (34.0 vs 35.0)" in text
    else:  # no 4-bit system clears both rivals everywhere: the usual rule (the fastest)
        assert v["ship"] == "tuned onnx" and "Passed over" not in text


@pytest.mark.parametrize("onnx_wins_a_task", [False, True])
def test_a_faster_artifact_that_another_beats_on_a_task_is_passed_over(onnx_wins_a_task: bool) -> None:
    """Equal on the mean is not equal everywhere: the fastest near-best system ships unless another
    near-best one is significantly better on some task and significantly worse on none."""
    onnx, q4 = {**ONNX, "bits": 4}, {**Q4, "bits": 4}
    per_task = {"fluency": {"value": 1.5, "lo": 0.5, "hi": 2.5}}  # q4 - onnx
    if onnx_wins_a_task:
        per_task["grammar"] = {"value": -2.0, "lo": -3.0, "hi": -1.0}
    doc = _doc(
        [COPY, BASE, MERGED, q4, onnx],
        [
            *(_cmp(c["id"], "copy", 11) for c in (MERGED, q4, onnx)),
            *(_cmp(c["id"], "base", 6.5) for c in (MERGED, q4, onnx)),
            _cmp("tuned_q4", "tuned_fp32", -0.5),
            _cmp("tuned_onnx", "tuned_fp32", -0.2),
            _cmp("tuned_q4", "tuned_onnx", -0.3, tasks=per_task),
        ],
    )
    (v,) = verdict(doc, None, None, max_bits=4)
    text = "\n".join(v["text"])
    if onnx_wins_a_task:  # each better somewhere: no one dominates, the faster ships
        assert v["ship"] == "tuned onnx" and "Passed over" not in text
    else:
        assert v["ship"] == "tuned q4"
        assert "Passed over: tuned onnx" in text and "significantly better on fluency (+1.5 [+0.5, +2.5])" in text


def test_among_tied_artifacts_the_one_without_an_importance_matrix_ships() -> None:
    plain = {**_cell("tuned_gguf_q4", "quantized", 41.5, 300, 400), "bits": 4}
    weighted = {**_cell("tuned_gguf_q4_imatrix", "quantized", 41.6, 290, 390), "bits": 4}
    doc = _doc(
        [COPY, BASE, MERGED, plain, weighted],
        [
            *(_cmp(c["id"], "copy", 11) for c in (MERGED, plain, weighted)),
            *(_cmp(c["id"], "base", 6.5) for c in (MERGED, plain, weighted)),
            _cmp("tuned_gguf_q4", "tuned_fp32", -0.5),
            _cmp("tuned_gguf_q4_imatrix", "tuned_fp32", -0.4),
            _cmp("tuned_gguf_q4_imatrix", "tuned_gguf_q4", 0.1),
        ],
    )
    (v,) = verdict(doc, None, None, max_bits=4)
    assert v["ship"] == "tuned gguf q4"  # faster and lighter by less than the tie margin: the plainer one


def test_the_export_closest_to_its_fp32_parent_is_named_when_it_is_not_the_shipped_one() -> None:
    """A LoRA-at-run-time export (parent: the adapter, like the merge's) keeps more of the fp32 score than
    the fast merged-and-rounded one but is over the latency budget: the fast one ships and the verdict names
    the faithful one, with what it keeps; when it fits the budget and is as fast, no extra line."""
    merged = {**MERGED, "path": "runs/x/merged", "parent": "runs/x/adapter"}
    fast = {**_cell("tuned_gguf_IQ4_NL", "quantized", 41.5, 100, 400), "label": "tuned gguf IQ4_NL"}
    fast.update(parent="runs/x/merged")
    fast["quality"]["headline"]["coherence"] = 39.0
    lora = {**_cell("tuned_gguf_Q4_1_lora", "quantized", 41.9, 200, 400), "label": "tuned gguf Q4_1 + LoRA"}
    lora.update(parent="runs/x/adapter")
    cells = [COPY, BASE, merged, fast, lora]
    cmps = [
        *(_cmp(c["id"], "copy", 11) for c in (merged, fast, lora)),
        *(_cmp(c["id"], "base", 6.5) for c in (merged, fast, lora)),
        {**_cmp("tuned_gguf_IQ4_NL", "tuned_fp32", -0.5), "differ": 0.59},
        {**_cmp("tuned_gguf_Q4_1_lora", "tuned_fp32", -0.1), "differ": 0.17},
        _cmp("tuned_gguf_Q4_1_lora", "tuned_gguf_IQ4_NL", 0.4),
    ]
    (v,) = verdict(_doc(cells, cmps), 150, None, max_bits=4)
    assert v["ship"] == "tuned gguf IQ4_NL"
    (line,) = [t for t in v["text"] if t.startswith("Closest to its fp32 parent")]
    assert line.startswith("Closest to its fp32 parent at ≤ 4 bits: tuned gguf Q4_1 + LoRA (edit p50 200 ms, over")
    assert "against its fp32 parent (tuned fp32)" in line and "differs from the parent's on 17% of dev rows" in line
    assert "keeps 99.8% of the mean score" in line
    (v,) = verdict(_doc([COPY, BASE, merged, lora], cmps[:-1]), 250, None, max_bits=4)
    assert v["ship"] == "tuned gguf Q4_1 + LoRA" and not any(t.startswith("Closest") for t in v["text"])
    assert any(t.startswith("Against its fp32 parent (tuned fp32)") for t in v["text"])


def _harper(p50: float = 10, rss: float = 100) -> dict:
    cell = _cell("harper", "system", 33, p50, rss)
    cell["runtime"] = "harper"
    return cell


@pytest.mark.parametrize(
    ("better", "says"),
    [
        (
            {"clarity"},
            "For grammar and spelling alone, Harper is enough: the model is not significantly better on "
            "grammar or fluency, at 30x Harper's time per edit and 4.0x its memory; the model earns its cost on "
            "clarity.",
        ),
        (
            {"grammar", "clarity"},
            "The model is significantly better than Harper on grammar, clarity, at 30x Harper's "
            "time per edit and 4.0x its memory.",
        ),
        (set(), "The model is better than Harper on no task, at 30x its time: use Harper."),
    ],
)
def test_the_harper_sentence_takes_each_of_its_three_branches(better: set, says: str) -> None:
    up, flat = {"value": 5.0, "lo": 3.0, "hi": 7.0}, {"value": 0.0, "lo": -1.0, "hi": 1.0}
    vs_harper = {t: up if t in better else flat for t in TASK_NAMES}
    cells = [COPY, BASE, Q4, _harper()]
    if not better:  # a bench without the checking tasks: nothing for Harper to be enough at
        cells = [json.loads(json.dumps(c)) for c in cells]
        for c in cells:
            for key in ("headline", "headline_ci", "headline_source"):
                c["quality"][key] = {t: v for t, v in c["quality"][key].items() if t not in ("grammar", "fluency")}
    doc = _doc(
        cells,
        [_cmp("tuned_q4", "copy", 11), _cmp("tuned_q4", "base", 6), _cmp("tuned_q4", "harper", 1, tasks=vs_harper)],
    )
    (v,) = verdict(doc, None, None)
    assert says in "\n".join(v["text"])


def test_not_yet_names_the_tasks_where_it_is_worse_than_the_untuned_model() -> None:
    worse = {"neutralization": {"value": -3.0, "lo": -5.0, "hi": -1.0}}
    doc = _doc([COPY, BASE, Q4], [_cmp("tuned_q4", "copy", 11), _cmp("tuned_q4", "base", 0.5, half=2.0, tasks=worse)])
    (v,) = verdict(doc, None, None)
    assert (
        "Worth it: not yet: it beats copy on the mean, but is not significantly better than the untuned base "
        "model (worse on neutralization)." in v["text"]
    )


def test_each_device_gets_its_own_verdict() -> None:
    gpu = {**_cell("tuned_q4_cuda", "quantized", 41, 40, 400), "device": "cuda"}
    gpu_base = {**_cell("base_cuda", "base", 35, 100, 900), "device": "cuda"}
    doc = _doc(
        [COPY, BASE, Q4, gpu_base, gpu],
        [
            _cmp("tuned_q4", "copy", 11),
            _cmp("tuned_q4", "base", 6),
            _cmp("tuned_q4_cuda", "copy", 10),
            _cmp("tuned_q4_cuda", "base_cuda", 5),
        ],
    )
    found = {v["device"]: v for v in verdict(doc, None, None)}
    assert set(found) == {"cpu", "cuda"}
    assert found["cpu"]["ship"] == "tuned q4" and found["cuda"]["ship"] == "tuned q4 cuda"
    assert "on cuda" in found["cuda"]["text"][0] and "on cpu" in found["cpu"]["text"][0]


def test_nothing_within_the_budget_says_so_and_what_to_relax() -> None:
    doc = _doc([COPY, BASE, Q4], [_cmp("tuned_q4", "copy", 11), _cmp("tuned_q4", "base", 6)])
    (v,) = verdict(doc, 100, None)  # Q4's edit p50 is 300 ms
    assert v["ship"] is None and v["text"] == [
        "No tuned artifact on cpu fits the budget; relax --max-latency-ms/--max-memory-mb/--max-bits."
    ]


@pytest.mark.parametrize(
    ("tasks", "decision"),
    [
        ({"fluency": {"value": 1.5, "lo": 0.5, "hi": 2.5}}, "keep it on: it helps fluency and hurts no task"),
        (
            {"simplification": {"value": -1.0, "lo": -1.8, "hi": -0.2}},
            "it hurts simplification: choose the policy again",
        ),
        ({}, "it changes no task beyond its interval"),
    ],
)
def test_the_policy_row_is_judged_against_the_same_model_without_it(tasks: dict, decision: str) -> None:
    pol = {**_cell("tuned_q4_policy", "quantized", 41.6, 320, 410, path="tuned_q4"), "policy": "auto"}
    doc = _doc(
        [COPY, BASE, MERGED, Q4, pol],
        [
            *(_cmp(c["id"], "copy", 11) for c in (MERGED, Q4, pol)),
            *(_cmp(c["id"], "base", 6.5) for c in (MERGED, Q4, pol)),
            _cmp("tuned_q4", "tuned_fp32", -0.5),
            _cmp("tuned_q4_policy", "tuned_fp32", -0.4),
            _cmp("tuned_q4_policy", "tuned_q4", 0.1, tasks=tasks),
        ],
    )
    (v,) = verdict(doc, None, None)
    (line,) = [t for t in v["text"] if t.startswith("Under its per-task policy")]
    assert "against tuned q4 without it (+0.1 [-0.9, +1.1] on the mean)" in line, line
    assert f"Decision: {decision}" in line, line
