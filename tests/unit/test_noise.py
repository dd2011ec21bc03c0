"""Synthetic learner errors: each rule makes the error it names, the pairs are deterministic, and
`edgewrite data` builds them from training rows only."""

import random

import pytest

from edgewrite.noise import RULES, add_errors, clean_sentences, synthetic_pairs

CASES = {
    "article": ("She bought a new car for the family .", None),
    "preposition": ("He lives in Paris .", None),
    "agreement": (
        "They were happy because she likes music .",
        {"They was happy because she likes music .", "They were happy because she like music ."},
    ),
    "tense": (
        "We walked home and stopped at the shop .",
        {"We walk home and stopped at the shop .", "We walked home and stop at the shop ."},
    ),
    "number": ("The students read many books .", {"The student read many books .", "The students read many book ."}),
    "spelling": ("Beautiful weather today .", None),
    "punctuation": ("First, we eat .", {"First we eat .", "First, we eat"}),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_makes_its_error(rule: str) -> None:
    sentence, allowed = CASES[rule]
    words = sentence.split()
    assert RULES[rule](words, random.Random(0))
    noisy = " ".join(words)
    assert noisy != sentence
    if allowed is not None:
        assert noisy in allowed, noisy
    if rule == "preposition":
        assert noisy.split()[2] != "in" and noisy.split()[:2] == ["He", "lives"]
    if rule == "spelling":
        assert sum(a != b for a, b in zip(noisy.split(), sentence.split(), strict=True)) == 1
    if rule == "article":  # an article deleted or replaced by another, nothing else
        rest = [w for w in noisy.split() if w not in ("a", "an", "the")]
        assert rest == [w for w in sentence.split() if w not in ("a", "an", "the")]


def test_a_rule_that_does_not_apply_changes_nothing() -> None:
    words = "Yes .".split()
    assert not RULES["article"](words, random.Random(0)) and words == ["Yes", "."]


def test_pairs_are_deterministic_and_always_differ_from_the_clean_text() -> None:
    texts = ["The committee met on Monday to discuss the new budget. It was approved by everyone present."] * 3 + [
        "Researchers have found that people who walk every day live longer than those who do not."
    ]
    a = synthetic_pairs(texts, 10, seed=1)
    assert a == synthetic_pairs(texts, 10, seed=1) and a
    for noisy, clean, rules in a:
        assert (
            noisy != clean
            and rules
            and clean
            in {
                "The committee met on Monday to discuss the new budget.",
                "It was approved by everyone present.",
                "Researchers have found that people who walk every day live longer than those who do not.",
            }
        )
    assert len(add_errors("The cat sat on the mat .", random.Random(5), max_errors=3)[1]) <= 3


def test_only_prose_sentences_are_noised() -> None:
    got = clean_sentences(
        ["1. Item one is here ok.", "```code``` is not prose at all.", "A real sentence with six words."]
    )
    assert got == ["A real sentence with six words."]


def test_data_adds_synthetic_rows_from_training_rows_only(tmp_path, tiny_data_dir) -> None:
    import json

    from edgewrite.data import build_dataset
    from edgewrite.recipe import DataConfig
    from tests.conftest import tiny_sources

    long_text = "The committee deliberated extensively before reaching its final verdict on the case."
    (tiny_data_dir / "simplification" / "train.jsonl").write_text(
        json.dumps({"task": "simplification", "source": "x y z", "references": [long_text], "id": "s-long"}) + "\n"
    )
    config = DataConfig(data_dir=str(tiny_data_dir), sources=tiny_sources(tiny_data_dir), synthetic_errors=5)
    manifest = build_dataset(config, tmp_path / "d", seed=3)
    rows = [json.loads(x) for x in (tmp_path / "d" / "train.jsonl").read_text().splitlines()]
    synthetic = [r for r in rows if r["dataset"] == "synthetic"]
    assert synthetic and {r["task"] for r in synthetic} <= {"grammar", "fluency"}
    clean_answers = {r["references"][0] for r in rows if r["task"] in ("simplification", "paraphrase", "clarity")}
    clean_answers |= {r["references"][0] for r in rows if r["task"] in ("coherence", "general")}
    # each clean target is a sentence of a training answer (answers of several sentences are split)
    assert all(any(r["references"][0] in a for a in clean_answers) for r in synthetic)
    assert all(r["source"] != r["references"][0] for r in synthetic)
    assert any(r["references"] == [long_text] for r in synthetic)
    dev = (tmp_path / "d" / "dev.jsonl").read_text()
    assert all(r["references"][0] not in dev for r in synthetic)
    assert manifest["counts"]["grammar"]["train"] >= 3
