from edgewrite.tasks import (
    ALPACA_TEMPLATE,
    TASK_NAMES,
    TASKS,
    build_prompt,
    pick_instruction,
    stop_text,
    style_of,
    user_message,
)


def test_seven_tasks_each_with_several_wordings() -> None:
    assert len(TASK_NAMES) == 7
    for task in TASKS.values():
        assert len(task.instructions) >= 8 and len(set(task.instructions)) == len(task.instructions)
        assert task.metrics


def test_grammar_wordings_do_not_collide_with_fluency() -> None:
    assert not set(TASKS["grammar"].instructions) & set(TASKS["fluency"].instructions)


def test_instruction_choice_is_deterministic_and_varied() -> None:
    picks = {pick_instruction("clarity", f"row-{i}") for i in range(200)}
    assert pick_instruction("clarity", "row-7") == pick_instruction("clarity", "row-7")
    assert len(picks) == len(TASKS["clarity"].instructions)


def test_user_message_joins_instruction_and_text() -> None:
    assert user_message("Paraphrase this paragraph.", "A b.") == "Paraphrase this paragraph:\nA b."
    assert user_message("Name a colour.", "") == "Name a colour."


class _FakeTok:
    eos_token = "</s>"


def test_alpaca_prompt() -> None:
    p = build_prompt(_FakeTok(), "Simplify", "Long words.", style="alpaca")
    assert p == ALPACA_TEMPLATE.format(instruction="Simplify", input="Long words.")
    assert stop_text(_FakeTok(), "alpaca") == "</s>"


def test_an_untuned_model_is_prompted_by_its_chat_template_or_else_alpaca() -> None:
    """A tuned artifact's manifest names the style it was trained on; an untuned base names none: its chat
    template if it has one, the Writing-Alpaca prompt if not (a base model such as Gemma 3 270M's GGUF)."""

    class Tok:
        def __init__(self, template: str | None) -> None:
            self.chat_template = template

    assert style_of({"prompt_style": "chat-nosystem"}, Tok(None)) == "chat-nosystem"
    assert style_of({"kind": "base"}, Tok("{{ messages }}")) == "chat"
    assert style_of({"kind": "base"}, Tok(None)) == style_of({"prompt_style": None}, Tok("")) == "alpaca"
