import pytest

from edgewrite.edit import clean_output


@pytest.mark.parametrize(
    "raw, source, want",
    [
        ("She goes to school.", "She go to school.", "She goes to school."),
        ("The corrected sentence is: She goes to school.", "", "She goes to school."),
        (
            "Here is the corrected sentence:\nShe goes to school.\n\nI changed 'go' to 'goes'.",
            "",
            "She goes to school.",
        ),
        ("Sure! Here's the revised text: It rained.", "", "It rained."),
        ('"She goes to school."', "She go to school.", "She goes to school."),
        ('"Quoted," he said.', '"Quoted," he says.', '"Quoted," he said.'),
        ("She goes to school.<|im_end|>", "", "She goes to school."),
        ("Simplified version: Rain is expected.", "", "Rain is expected."),
        ("   \n  ", "x", ""),
        ("Paraphrase: The meeting moved.", "", "The meeting moved."),
        ("Here's a revised version of the sentence with minimal changes: Here's a way.", "", "Here's a way."),
        ("Note: the meeting moved to Friday.", "", "Note: the meeting moved to Friday."),
        ("The meeting: moved to Friday.", "", "The meeting: moved to Friday."),
    ],
)
def test_clean_output(raw: str, source: str, want: str) -> None:
    assert clean_output(raw, source) == want
