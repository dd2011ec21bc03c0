"""Edits as data: alignment, kinds, reasons, spans, and applying a chosen subset."""

import json
from pathlib import Path

import pytest

from edgewrite.edit.spans import (
    KINDS,
    Suggestion,
    align,
    apply_suggestions,
    classify,
    kinds_of_m2_type,
    line_column,
    m2_agreement,
    suggestions,
)
from edgewrite.edit.text import segment, units_with_offsets

CASES = [  # source, edited, [(original, replacement, kind)]
    (
        "She go to school every days.",
        "She goes to school every day.",
        [("go", "goes", "verb form"), ("days", "day", "noun number")],
    ),
    ("I recieve it", "I receive it", [("recieve", "receive", "spelling")]),
    ("i like it", "I like it", [("i", "I", "capitalization")]),
    ("Hello world", "Hello, world", [("", ",", "punctuation")]),
    ("This is a important point.", "This is an important point.", [("a", "an", "determiner")]),
    ("He is good in math.", "He is good at math.", [("in", "at", "preposition")]),
    ("We discussed about the problem.", "We discussed the problem.", [(" about", "", "preposition")]),
    ("She went to store.", "She went to the store.", [("", " the", "determiner")]),
    ("She has went home.", "She has gone home.", [("went", "gone", "verb form")]),
    ("I saw two dog.", "I saw two dogs.", [("dog", "dogs", "noun number")]),
    ("He is very happiness.", "He is very happy.", [("happiness", "happy", "word form")]),
    ("We meet every day.", "We meet everyday.", [("every day", "everyday", "spelling")]),
    ("I like very much it.", "I like it very much.", [("very much it", "it very much", "word order")]),
    ("The film was big.", "The film was long.", [("big", "long", "word choice")]),
    ("She is here.", "She is already here.", [("", " already", "missing word")]),
    ("It is really very good.", "It is very good.", [(" really", "", "unneeded word")]),
]


@pytest.mark.parametrize(("source", "edited", "want"), CASES)
def test_each_change_is_its_own_edit_with_its_kind(source: str, edited: str, want: list) -> None:
    found = suggestions(source, edited)
    assert [(s.original, s.replacement, s.kind) for s in found] == want
    assert all(source[s.start : s.end] == s.original for s in found)
    assert apply_suggestions(source, found) == (edited, [])


def test_reasons_are_one_readable_line() -> None:
    go, days = suggestions("She go to school every days.", "She goes to school every day.")
    assert go.reason == "agreement: 'go' → 'goes' after 'She'"
    assert days.reason == "noun number: 'days' → 'day' after 'every'"
    assert classify(["go"], ["went"])[1] == "tense: 'go' → 'went'"
    assert classify([], [","])[1] == "punctuation: add ','"
    assert all(classify(o, c)[0] in KINDS for o, c in ((["a"], ["b", "c", "d"]), (["x"], []), ([], ["y"])))


def test_taking_one_edit_and_leaving_the_other() -> None:
    source = "She go to school every days."
    go, days = suggestions(source, "She goes to school every day.")
    assert apply_suggestions(source, [go])[0] == "She goes to school every days."
    assert apply_suggestions(source, [days])[0] == "She go to school every day."


def test_bad_edits_are_dropped_never_applied() -> None:
    text = "She go home."
    good = Suggestion(4, 6, "go", "goes", "verb form", "r")
    cases = [
        Suggestion(4, 60, "go", "x", "rewrite", "r"),  # out of range
        Suggestion(-1, 2, "Sh", "x", "rewrite", "r"),
        Suggestion(5, 7, "o ", "x", "rewrite", "r"),  # overlaps the good one
        Suggestion(0, 3, "He ", "x", "rewrite", "r"),  # stale: the text there is not its original
    ]
    out, dropped = apply_suggestions(text, [good, *cases])
    assert out == "She goes home." and set(dropped) == set(cases)


def test_whole_sentences_round_trip_through_their_edits() -> None:
    """Up to the whitespace between tokens (a space before a comma is not an edit of its own)."""
    pairs = [
        ("Me and him was late to the meeting yesterday .", "He and I were late for the meeting yesterday ."),
        ("The informations is useful , isnt it?", "The information is useful, isn't it?"),
        ("In order to be able to win, we must train.", "To win, we must train hard."),
        ("😀 It rained. We stayed inside.", "It rained, so we stayed inside."),
    ]
    for source, edited in pairs:
        found = suggestions(source, edited)
        applied, dropped = apply_suggestions(source, found)
        assert applied.replace(" ,", ",") == edited and dropped == [], (source, found)


def test_alignment_follows_errant_on_a_substitution_and_a_merge() -> None:
    # 'go -> goes' is one substitution, not a deletion and an insertion; a case change merges with its full stop
    assert align("She go home".split(), "She goes home".split()) == [(1, 2, 1, 2)]
    assert align("I ate , we left".split(), "I ate . We left".split()) == [(2, 4, 2, 4)]


def test_utf16_columns_count_an_emoji_twice() -> None:
    text = "😀 a\r\nb 😀 c"
    where = line_column(text, [2, 6, 10], utf16=True)
    assert where == {2: (0, 3), 6: (1, 1), 10: (1, 6)}
    assert line_column(text, [10])[10] == (1, 5)


def test_front_matter_code_and_ignore_comments_are_never_units() -> None:
    doc = (
        "---\ntitle: she go home\n---\n# Title\n\nShe go home.\n\n```\nhe go\n```\n"
        "He go home. <!-- edgewrite-ignore-line -->\n<!-- edgewrite-ignore-next-line -->\nThey goes.\nWe goes.\n"
    )
    assert "".join(p.text for p in segment(doc)) == doc
    assert [t for _, t in units_with_offsets(doc)] == ["Title", "She go home.", "We goes."]
    assert units_with_offsets("# edgewrite-ignore-file\nShe go home.\n") == []


def test_m2_types_map_onto_kinds() -> None:
    assert kinds_of_m2_type("R:VERB:SVA") == {"verb form"} and kinds_of_m2_type("M:DET") == {"determiner"}
    assert kinds_of_m2_type("U:ADV") == {"unneeded word"} and kinds_of_m2_type("SVA") == {"verb form"}
    assert kinds_of_m2_type("Srun") == set() and kinds_of_m2_type("noop") == set()


def test_agreement_with_m2_gold_counts_matches() -> None:
    m2 = (
        "S She go to school every days .\n"
        "A 1 2|||R:VERB:SVA|||goes|||REQUIRED|||-NONE-|||0\n"
        "A 5 6|||R:NOUN:NUM|||day|||REQUIRED|||-NONE-|||0\n\n"
        "S It is fine .\nA -1 -1|||noop|||-NONE-|||REQUIRED|||-NONE-|||0\n\n"
        "S He like to to swim .\n"
        "A 1 4|||R:OTHER|||likes to|||REQUIRED|||-NONE-|||0\n"  # the alignment splits it in two: no match
    )
    got = m2_agreement(m2)
    assert (got["gold_edits"], got["aligned_edits"], got["agreeing_edits"]) == (3, 4, 2)
    assert got["span_precision"] == 0.5 and got["span_recall"] == pytest.approx(2 / 3)
    assert got["kind_agreement"] == 1.0 and got["typed_edits"] == 2


CWEB = Path(__file__).resolve().parents[3] / "shared" / "data" / "cweb" / "raw" / "data" / "m2" / "CWEB-G.dev.m2"


def test_agreement_on_real_errant_gold_is_high() -> None:
    """CWEB-G dev's M2 was made by ERRANT itself: the first 600 sentences of it."""
    import os

    if not CWEB.is_file():
        assert os.environ.get("CI") != "true", f"CI needs {CWEB} (the shared data folder beside the clone)"
        pytest.skip(f"{CWEB} not found")
    blocks = CWEB.read_text(encoding="utf-8").strip().split("\n\n")[:600]
    got = m2_agreement("\n\n".join(blocks))
    assert got["gold_edits"] > 200 and got["span_f1"] > 0.9 and got["kind_agreement"] > 0.75, json.dumps(got)[:300]


def test_a_directive_is_a_comment_not_words_in_prose() -> None:
    prose = "Put an edgewrite-ignore-file comment at the top to skip a file.\nShe go home.\n"
    assert len(units_with_offsets(prose)) == 2  # a README that documents the directive is still checked
    assert units_with_offsets("// edgewrite-ignore-file\nShe go home.\n") == []


def test_inline_code_urls_and_addresses_are_never_edited() -> None:
    source = "Run `edgewrite check docs` and see https://example.org/a-page for she go details."
    edited = "Run `edgewrite checks doc` and see https://example.org/the-page for her going details."
    found = suggestions(source, edited)
    assert found and all("`" not in s.original and "example" not in s.original for s in found)
    out, _ = apply_suggestions(source, found)
    assert "`edgewrite check docs`" in out and "https://example.org/a-page" in out and "her going" in out
