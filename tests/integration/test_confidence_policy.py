"""A confidence on every edit, from the model itself, and the per-task policy that drops unsure edits."""

import json
from pathlib import Path

import pytest

from edgewrite.edit import load_editor
from edgewrite.edit.confidence import unit_confidences
from edgewrite.edit.policy import POLICY_FILE, read_policy
from edgewrite.errors import EdgewriteError
from edgewrite.runtimes import load_runtime

SOURCE = "She go to school."


def _confidences(path: Path) -> list:
    runtime, manifest = load_runtime(path)
    editor, _ = load_editor(path)
    prompt = editor.prompt("grammar", SOURCE)
    (g,) = runtime.generate([prompt], max_new_tokens=16)
    found = unit_confidences(runtime, prompt, SOURCE, g.text.replace("<|im_end|>", "").strip())
    runtime.close()
    editor.close()
    return found


def test_every_runtime_that_gives_logits_gives_the_same_confidence(stopping_model: dict) -> None:
    """llama.cpp (one teacher-forced pass), transformers and onnxruntime-genai (a next-token evaluation
    per edit) on the same tuned model: the same edits, confidences within the export's rounding."""
    found = {name: _confidences(stopping_model[name]) for name in ("hf", "gguf", "onnx")}
    edits = {name: [(s.original, s.replacement) for s in f] for name, f in found.items()}
    assert edits["hf"] == edits["gguf"] == edits["onnx"] == [("She go to school", "Fine")]
    values = {name: f[0].confidence for name, f in found.items()}
    assert all(0.5 < v <= 1.0 for v in values.values()), values  # the model chose it: it prefers it
    assert abs(values["hf"] - values["gguf"]) < 0.05 and abs(values["hf"] - values["onnx"]) < 0.05, values


def test_a_threshold_drops_the_edits_below_it(stopping_model: dict) -> None:
    (edit,) = _confidences(stopping_model["gguf"])
    below = max(0.0, edit.confidence - 0.01)
    keep, _ = load_editor(stopping_model["gguf"], threshold=below)
    (kept,) = keep.edit("grammar", [SOURCE])
    assert kept.output == "Fine." and kept.suggestions[0].confidence == pytest.approx(edit.confidence)
    if edit.confidence < 1.0:
        drop, _ = load_editor(stopping_model["gguf"], threshold=min(1.0, edit.confidence + 1e-4))
        (dropped,) = drop.edit("grammar", [SOURCE])
        assert dropped.output == SOURCE  # every edit of the unit dropped: the unit comes back as it was


def test_a_policy_beside_the_model_applies_and_a_bad_one_is_one_line(stopping_model: dict, tmp_path: Path) -> None:
    gguf = stopping_model["gguf"]
    fingerprint = json.loads((gguf / "manifest.json").read_text())["fingerprint"]
    policy = tmp_path / POLICY_FILE
    policy.write_text(json.dumps({"adapter_fingerprint": fingerprint, "tasks": {"grammar": {"threshold": 1.0}}}))
    lines: list[str] = []
    editor, manifest = load_editor(gguf, policy=policy, log=lines.append)
    assert manifest["policy"] == str(policy) and lines == []
    (edit,) = editor.edit("grammar", [SOURCE])
    (unsure,) = _confidences(gguf)
    assert edit.output == (SOURCE if unsure.confidence < 1.0 else "Fine.")
    (other,) = editor.edit("fluency", [SOURCE])  # no rule for fluency: the plain model
    assert other.output == "Fine."
    cases = {
        "another model": {"adapter_fingerprint": "someone-else", "tasks": {}},
        "malformed": {"tasks": {"grammar": {"threshold": 3}}, "adapter_fingerprint": fingerprint},
        "unknown task": {"tasks": {"poetry": {}}, "adapter_fingerprint": fingerprint},
        "three passes": {"tasks": {"grammar": {"passes": 3}}, "adapter_fingerprint": fingerprint},
    }
    for what, doc in cases.items():
        policy.write_text(json.dumps(doc))
        lines.clear()
        editor, manifest = load_editor(gguf, policy=policy, log=lines.append)
        assert "policy" not in manifest and len(lines) == 1 and "running without a policy" in lines[0], (what, lines)
        assert editor.edit("grammar", [SOURCE])[0].output == "Fine."
    with pytest.raises(EdgewriteError, match="does not exist"):
        read_policy(tmp_path / "missing.json")
    with pytest.raises(EdgewriteError, match="between 0 and 1"):
        load_editor(gguf, threshold=1.5)
    with pytest.raises(EdgewriteError, match="gives no confidence; runtimes that do: llama.cpp"):
        load_editor("harper", threshold=0.5)


def test_a_batch_of_units_gets_its_confidences_after_the_batch(stopping_model: dict) -> None:
    """llama.cpp decodes several units together and reports each from inside the batch: the confidences
    (which need the same context) are computed once the batch is done, every unit reported once."""
    editor, _ = load_editor(stopping_model["gguf"], policy="auto", batch_size=8)
    texts = ["She go to school.", "He go home.", "They was late.", "I has a cat."]
    heard: list[int] = []
    edits = editor.edit("grammar", texts, done=lambda i, e: heard.append(i))
    assert sorted(heard) == [0, 1, 2, 3] and [e.output for e in edits] == ["Fine."] * 4
    assert all(e.suggestions and e.suggestions[0].confidence is not None for e in edits)


def test_a_second_pass_edits_the_models_own_output(stopping_model: dict, tmp_path: Path) -> None:
    """passes 2: the model edits its first answer again (its tokens counted for both passes); the edits and
    their confidences are those of the source against the final answer."""
    gguf = stopping_model["gguf"]
    fingerprint = json.loads((gguf / "manifest.json").read_text())["fingerprint"]
    policy = tmp_path / POLICY_FILE
    policy.write_text(json.dumps({"adapter_fingerprint": fingerprint, "tasks": {"grammar": {"passes": 2}}}))
    once, _ = load_editor(gguf)
    twice, _ = load_editor(gguf, policy=policy)
    seen: list[list[str]] = []
    inner = twice.main.edit
    twice.main.edit = lambda task, texts, done=None: seen.append(list(texts)) or inner(task, texts, done)
    (one,) = once.edit("grammar", [SOURCE])
    (two,) = twice.edit("grammar", [SOURCE])
    assert seen == [[SOURCE], ["Fine."]]  # the second pass reads the first pass's answer
    assert two.output == one.output == "Fine." and two.new_tokens == 2 * one.new_tokens
    assert two.suggestions and (two.suggestions[0].original, two.suggestions[0].replacement) == (
        "She go to school",
        "Fine",
    )
    (fluency,) = twice.edit("fluency", [SOURCE])  # no rule for fluency: one pass
    assert len(seen) == 3 and fluency.new_tokens == one.new_tokens
