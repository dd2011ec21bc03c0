from edgewrite.assist import segment, split_sentences, word_diff

DOC = """# A title with a error

She go to school. He dont like it! Is it fine? Yes, e.g. this one.

- first item are here
- second item

> a quoted line are here

```python
x = "code is not edited."
```

| a | b |
|---|---|

1. numbered item are here
"""


def test_segment_round_trips_and_keeps_structure_fixed() -> None:
    pieces = segment(DOC, "sentence")
    assert "".join(p.text for p in pieces) == DOC
    editable = [p.text for p in pieces if p.editable]
    assert editable == [
        "A title with a error",
        "She go to school.",
        "He dont like it!",
        "Is it fine?",
        "Yes, e.g. this one.",
        "first item are here",
        "second item",
        "a quoted line are here",
        "numbered item are here",
    ]
    fixed = "".join(p.text for p in pieces if not p.editable)
    assert 'x = "code is not edited."' in fixed and "| a | b |" in fixed and "- " in fixed and "> " in fixed


def test_paragraph_unit_keeps_paragraphs_whole() -> None:
    doc = "First sentence. Second one.\nSame paragraph.\n\nNext paragraph.\n"
    pieces = segment(doc, "paragraph")
    assert [p.text for p in pieces if p.editable] == ["First sentence. Second one.\nSame paragraph.", "Next paragraph."]
    assert "".join(p.text for p in pieces) == doc


def test_sentence_split_keeps_whitespace() -> None:
    text = 'He said "Go." Then  he left. Dr. Who came.'
    pieces = split_sentences(text)
    assert "".join(p.text for p in pieces) == text
    assert [p.text for p in pieces if p.editable] == ['He said "Go."', "Then  he left.", "Dr. Who came."]


def test_word_diff() -> None:
    runs = word_diff("She go to school.", "She goes to school.")
    assert ("-", "go ") in runs and ("+", "goes ") in runs
    assert "".join(t for op, t in runs if op != "+") == "She go to school."


def test_fragments_do_not_gain_a_period() -> None:
    from edgewrite.assist import _keep_unterminated

    assert _keep_unterminated("# Notes", "Notes.") == "Notes"
    assert _keep_unterminated("a item here", "an item here.") == "an item here"
    assert _keep_unterminated("She go home.", "She goes home.") == "She goes home."
    assert _keep_unterminated("Wait", "Wait...") == "Wait..."
