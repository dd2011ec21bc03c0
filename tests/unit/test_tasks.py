from edgewrite.tasks import (
    ALPACA_TEMPLATE,
    TASK_NAMES,
    TASKS,
    build_prompt,
    pick_instruction,
    stop_text,
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
