from edgewrite.assist import edit_texts, segment, split_sentences, word_diff
from edgewrite.edit import Edit

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


class _Answers:
    """An editor whose answers are given: the bookkeeping of edit_texts, not a model, is under test."""

    name, batches = "answers", False

    def __init__(self, answers: dict[str, Edit]) -> None:
        self.answers = answers

    def edit(self, task: str, texts: list[str], done=None) -> list[Edit]:  # noqa: ANN001
        edits = [self.answers[t] for t in texts]
        for i, e in enumerate(edits):
            if done is not None:
                done(i, e)
        return edits


def test_an_answer_cut_off_or_empty_keeps_the_original() -> None:
    editor = _Answers(
        {
            "She go home.": Edit("She goes home.", "She goes home."),
            "A long paragraph.": Edit("A long para", "A long para", finish="length"),  # ran out of cells
            "Nothing back.": Edit("", ""),
        }
    )
    texts = ["She go home.", " A long paragraph. ", "Nothing back.", "12345"]
    assert edit_texts(editor, texts, "grammar") == ["She goes home.", " A long paragraph. ", "Nothing back.", "12345"]
