"""The seven writing tasks, their instruction wordings, metrics, and the one prompt builder.

Training, eval, bench and assist all format a request through ``build_prompt`` so that the model
sees at inference exactly what it saw in training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

GENERAL = "general"
TASK_NAMES = (
    "grammar",
    "fluency",
    "clarity",
    "coherence",
    "simplification",
    "neutralization",
    "paraphrase",
)

# Six wordings lists are EditEval's (facebookresearch/EditEval src/prompts.py, CC0). EditEval's
# fluency list is itself about grammar, so the grammar task gets its own list of minimal-correction
# wordings that never repeat a fluency one.
_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "grammar": (
        "Correct the grammatical errors in this sentence with minimal changes",
        "Correct only the grammar, spelling and punctuation mistakes",
        "Proofread this sentence and correct its errors",
        "Make the smallest edits that make this sentence grammatical",
        "Correct the grammar; keep everything else as it is",
        "Edit this sentence so that it is grammatically correct",
        "Fix the spelling and grammar of this sentence",
        "Correct the errors in this sentence",
    ),
    "fluency": (
        "Fix grammar errors",
        "Fix grammar errors in this sentence",
        "Fix all grammatical errors",
        "Fix errors in this text",
        "Update to remove grammar errors",
        "Remove all grammatical errors from this text",
        "Improve the grammar of this text",
        "Grammar improvements",
        "Remove grammar mistakes",
        "Fix the grammar mistakes",
    ),
    "clarity": (
        "Make the text more formal, concise, readable and understandable",
        "Make the text more formal",
        "Make the text more concise",
        "Make the text more readable",
        "Improve the readability of the text",
        "Make the text more understandable",
        "Make the text clearer",
        "Make the text easier to understand",
        "Improve the clarity of the text",
    ),
    "coherence": (
        "Make the text more cohesive, logically linked and consistent as a whole",
        "Make the text more cohesive",
        "Improve the cohesiveness of the text",
        "Make the text more logical",
        "Make the text more consistent",
        "Improve the consistency of the text",
        "Make the text more understandable",
        "Make the text clearer",
        "Make the text easier to understand",
        "Improve the coherency of the text",
    ),
    "simplification": (
        "Simplify this sentence",
        "Make this simpler",
        "Simplify",
        "Make this easier to understand",
        "Simplification",
        "Change to simpler wording",
        "Simplify this paragraph.",
        "Use simpler wording",
        "Simplify this text",
        "Make this text less complex",
    ),
    "neutralization": (
        "Remove POV",
        "Neutralize this text",
        "Make this more neutral",
        "Make this text more neutral",
        "Make this paragraph more neutral",
        "Remove unsourced opinions from this text",
        "Remove non-neutral points of view",
        "Remove points of view",
        "Make this text less biased",
    ),
    "paraphrase": (
        "Paraphrase this sentence",
        "Paraphrase",
        "Paraphrase this paragraph.",
        "Use different wording",
        "Paraphrase this text",
        "Rewrite this text",
        "Rewrite this text with different wording",
        "Rephrase this text",
        "Reword this text",
    ),
}


@dataclass(frozen=True)
class Task:
    name: str
    instructions: tuple[str, ...]
    metrics: tuple[str, ...]
    unit: str  # what one request edits: "sentence" or "paragraph"

    @property
    def default_instruction(self) -> str:
        return self.instructions[0]


_METRICS = {
    "grammar": ("f0.5", "gleu", "exact_match"),
    "fluency": ("gleu", "sari"),
    "clarity": ("sari",),
    "coherence": ("sari",),
    "simplification": ("sari",),
    "neutralization": ("sari", "exact_match"),
    "paraphrase": ("sari", "ibleu"),
}

TASKS: dict[str, Task] = {
    name: Task(
        name=name,
        instructions=_INSTRUCTIONS[name],
        metrics=_METRICS[name],
        unit="paragraph" if name == "coherence" else "sentence",
    )
    for name in TASK_NAMES
}

# Tasks a recipe declares beyond the seven (`data.custom_tasks`): registered when the recipe is read, and
# again from the manifest of any artifact made from it (data, adapter, merged, exports all carry the
# declaration), so every command that loads such a model knows its tasks.
CUSTOM_METRICS = ("sari", "gleu", "exact_match", "ibleu")  # reference-based (F0.5 needs M2 gold edits)
CUSTOM: dict[str, dict[str, Any]] = {}


def register_task(name: str, instructions: list[str], unit: str = "sentence", metric: str = "sari") -> Task:
    """Declare a task that is not one of the seven: its name, instruction wordings, the unit one request
    edits and its headline metric. Its data lives in the same layout: ``<data_dir>/<name>/{train,dev}.jsonl``."""
    import re

    from edgewrite.errors import EdgewriteError

    spec = {"name": name, "instructions": list(instructions), "unit": unit, "metric": metric}
    where = f"custom task '{name}'"
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", name or ""):
        raise EdgewriteError(f"{where}: a name is lower-case letters, digits, - or _ (up to 40)")
    if name in TASK_NAMES or name == GENERAL:
        raise EdgewriteError(f"{where}: the name is taken by a built-in task; choose another")
    if not instructions or not all(isinstance(i, str) and i.strip() for i in instructions):
        raise EdgewriteError(f"{where}: give one or more instruction wordings")
    if unit not in ("sentence", "paragraph"):
        raise EdgewriteError(f"{where}: unit is sentence or paragraph, not {unit!r}")
    if metric not in CUSTOM_METRICS:
        raise EdgewriteError(f"{where}: metric is one of {', '.join(CUSTOM_METRICS)}, not {metric!r}")
    if name in CUSTOM and CUSTOM[name] != spec:
        raise EdgewriteError(f"{where} is declared twice, differently; one model's tasks at a time")
    CUSTOM[name] = spec
    TASKS[name] = Task(name=name, instructions=tuple(instructions), metrics=(metric,), unit=unit)
    return TASKS[name]


def register_from_manifest(manifest: dict[str, Any]) -> list[str]:
    """Register the custom tasks an artifact's manifest declares; their names."""
    specs = manifest.get("custom_tasks") or []
    for spec in specs:
        register_task(**spec)
    return [spec["name"] for spec in specs]


def register_from(ref: str | Any) -> list[str]:
    """The custom tasks of a model reference that is an artifact folder (others declare none)."""
    import json
    from pathlib import Path

    manifest = Path(str(ref)) / "manifest.json"
    if not manifest.is_file():
        return []
    try:
        return register_from_manifest(json.loads(manifest.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError):
        return []  # an unreadable manifest is reported by whatever reads it for real


def task_names() -> tuple[str, ...]:
    """The seven tasks, then every registered custom one."""
    return TASK_NAMES + tuple(CUSTOM)


ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_TEMPLATE_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def get_task(name: str) -> Task:
    from edgewrite.errors import EdgewriteError

    if name not in TASKS:
        raise EdgewriteError(f"unknown task '{name}'; tasks: {', '.join(task_names())}")
    return TASKS[name]


def pick_instruction(task: str, key: str) -> str:
    """A deterministic wording for a row: the same row always gets the same instruction."""
    wordings = TASKS[task].instructions
    index = int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(wordings)
    return wordings[index]


def user_message(instruction: str, text: str) -> str:
    if not text:
        return instruction
    return f"{instruction.rstrip('.:')}:\n{text}"


# How a request is rendered; the style travels in every artifact's manifest ("prompt_style").
# chat: the model's chat template as is (SmolLM2's adds a 16-token default system prompt to every
# request); chat-nosystem: the same template with an empty system turn instead of that default;
# alpaca: the Writing-Alpaca paper's prompt.
PROMPT_STYLES = ("chat", "chat-nosystem", "alpaca")


def style_of(manifest: dict, tokenizer: Any) -> str:
    """The prompt style an artifact is served with: its manifest's (every tuned artifact records the style it
    was trained on); an untuned model names none: its chat template, or the Writing-Alpaca prompt for a base
    model that has no chat template (Gemma 3 270M's GGUF)."""
    style = manifest.get("prompt_style")
    if style:
        return style
    return "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"


def chat_messages(messages: list[dict[str, str]], style: str = "chat") -> list[dict[str, str]]:
    """A conversation as the style renders it: chat-nosystem adds an empty system turn if none is given."""
    if style == "chat-nosystem" and not any(m["role"] == "system" for m in messages):
        return [{"role": "system", "content": ""}, *messages]
    return messages


def build_prompt(tokenizer: Any, instruction: str, text: str, style: str = "chat") -> str:
    """The text the model is given; the answer follows it directly."""
    if style == "alpaca":
        template = ALPACA_TEMPLATE if text else ALPACA_TEMPLATE_NO_INPUT
        return _bos(tokenizer) + template.format(instruction=instruction, input=text)
    if not getattr(tokenizer, "chat_template", None):
        from edgewrite.errors import EdgewriteError

        raise EdgewriteError(
            f"prompt_style '{style}' needs a chat template and this model's tokenizer has none (a base model): "
            "set prompt_style: alpaca in the recipe's data section"
        )
    messages = chat_messages([{"role": "user", "content": user_message(instruction, text)}], style)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _bos(tokenizer: Any) -> str:
    """The BOS text if this tokenizer normally adds one: prompts are always tokenized without
    special tokens, so the prompt text itself carries everything the model expects."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or not callable(tokenizer):
        return ""
    ids = tokenizer("a")["input_ids"]
    return bos if ids and ids[0] == tokenizer.bos_token_id else ""


def stop_text(tokenizer: Any, style: str = "chat") -> str:
    """The token text that ends an answer: the chat template's end-of-turn, or EOS for Alpaca style.

    Found by rendering a one-turn conversation and reading what the template puts right after the
    assistant's words, so it works for ChatML (<|im_end|>), Llama 3 (<|eot_id|>) and others alike.
    """
    if style == "alpaca" or not getattr(tokenizer, "chat_template", None):
        return tokenizer.eos_token
    marker = "XYZZY-END-MARKER"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}], tokenize=False
    )
    tail = rendered.split(marker, 1)[1]
    specials = sorted(
        (t for t in tokenizer.all_special_tokens + list(tokenizer.get_added_vocab()) if t and t in tail),
        key=tail.index,
    )
    return specials[0] if specials else tokenizer.eos_token
