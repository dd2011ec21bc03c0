"""The Harper system: the lint rules decided on dev are the ones applied."""

import pytest

from edgewrite.edit import load_editor
from edgewrite.edit.harper import SKIP_KINDS, HarperEditor, looks_tokenized
from edgewrite.errors import EdgewriteError


@pytest.fixture(scope="module")
def harper() -> HarperEditor:
    return HarperEditor()


def test_fixes_agreement_spelling_and_articles(harper: HarperEditor) -> None:
    assert harper.fix("She go to school.") == "She goes to school."
    assert harper.fix("This is an test of the the linter.") == "This is a test of the linter."
    (edit,) = harper.edit("grammar", ["I dont know."])
    assert edit.output == "I don't know." and edit.ttft_s > 0


def test_tokenized_text_keeps_its_tokenization(harper: HarperEditor) -> None:
    text = "He do n't like apples ."
    assert looks_tokenized(text) and not looks_tokenized("He doesn't like apples.")
    assert harper.fix(text) == text  # "do n't" -> "don't" and the space before "." are tokenization, not errors
    assert harper.fix("She go to school every day .") == "She goes to school every day ."


def test_lowercase_text_is_not_capitalized_and_skipped_kinds_never_apply(harper: HarperEditor) -> None:
    assert harper.fix("the mayor said it was good .") == "the mayor said it was good ."
    assert all(lint.lint_kind not in SKIP_KINDS for lint in harper.lints("It is very very unique, and it is  big."))
    assert HarperEditor(skip_kinds=frozenset()).lints("there are two  spaces here.")  # the same text, all kinds


def test_harper_is_a_system_of_the_edit_path() -> None:
    editor, manifest = load_editor("harper")
    assert manifest["kind"] == "system" and editor.name == "harper" and editor.runtime is None
    with pytest.raises(EdgewriteError, match="unknown pre-pass"):
        load_editor("harper", pre="spellcheck")
