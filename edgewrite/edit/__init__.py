"""The one edit path: a text and a task in, the edited text out, whatever does the editing.

An ``Editor`` is a model runtime behind the task's prompt (``ModelEditor``: build the prompt, generate,
clean the answer), a system that is not a model (``CopyEditor``; Harper in ``edit/harper.py``), or
a composition (``PrePassEditor``: one editor's output is the next one's input). eval, bench, tune's
selection, assist, serve and the language server all edit through this, so no command special-cases
a system by name.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edgewrite.edit.base import Done, Edit, _report  # noqa: F401 - Edit is part of this package's API
from edgewrite.edit.systems import COPY, PRE_PASSES, SYSTEMS, CopyEditor, check_pre, load_system  # noqa: F401
from edgewrite.errors import EdgewriteError

_LEAD_IN = re.compile(
    r"^(?:(?:sure|okay|ok|certainly)[,!.]?\s*)?"
    r"(?:here(?:'s| is| are)|the|this is the|a|an|my|revised|corrected|edited|improved|simplified|paraphrased|"
    r"rewritten|fixed|output|answer|response|result)\b"
    r"[^:\n]{0,80}?\b(?:version|sentence|text|paragraph|output|answer|response|rewrite|paraphrase|correction)s?\b"
    r"[^:\n]{0,60}:\s*",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^(?:output|answer|response|correction|paraphrase|simplified|corrected|revised)\s*:\s*", re.IGNORECASE
)


def clean_output(text: str, source: str = "") -> str:
    """One line of edited text from a model answer: no chat wrappers, no lead-in, no explanation."""
    text = text.replace("<|im_end|>", "").replace("</s>", "").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    stripped = _LABEL.sub("", _LEAD_IN.sub("", first, count=1), count=1)
    if not stripped and len(lines) > 1:  # "Here is the corrected sentence:" on a line of its own
        stripped = lines[1]
    text = stripped or first
    quoted = source.strip()[:1] in "\"'“"
    if not quoted and len(text) > 1 and text[0] in '"“' and text[-1] in '"”':
        text = text[1:-1].strip()
    return text


class Editor(Protocol):
    name: str
    batches: bool  # edits several texts in one pass (decode batching)

    def edit(self, task: str, texts: list[str], done: Done | None = None) -> list[Edit]:
        """The edits of ``texts``; ``done(i, edit)`` is called as each one is ready (a continuously
        batching runtime finishes short texts first), and at the latest before returning."""
        ...

    def budget(self, text: str) -> int:
        """Tokens the text takes (for batching similar lengths together)."""
        ...

    def close(self) -> None: ...


class ModelEditor:
    """A model runtime behind the task's prompt: build the prompt with the task's default instruction,
    generate greedily with a budget of 1.5x the input (+16), clean the answer."""

    def __init__(self, runtime: Any, style: str) -> None:
        self.runtime, self.style = runtime, style  # serve's chat completions talk to the runtime itself
        self.name = runtime.name
        self.batches = runtime.batches

    def budget(self, text: str) -> int:
        return len(self.runtime.tokenize(text))

    def prompt(self, task: str, text: str) -> str:
        from edgewrite.tasks import TASKS, build_prompt

        return build_prompt(self.runtime.tokenizer, TASKS[task].default_instruction, text, self.style)

    def edit(self, task: str, texts: list[str], done: Done | None = None) -> list[Edit]:
        prompts = [self.prompt(task, t) for t in texts]
        limit = min(1024, int(max(self.budget(t) for t in texts) * 1.5) + 16)

        def as_edit(t: str, g: Any) -> Edit:
            return Edit(
                output=clean_output(g.text, t),
                raw=g.text,
                prompt_tokens=g.prompt_tokens,
                new_tokens=g.new_tokens,
                ttft_s=g.ttft_s,
                decode_s=g.decode_s,
                finish=g.finish,
            )

        if done is not None and getattr(self.runtime, "reports_each", False):
            sent: dict[int, Edit] = {}

            def each(i: int, g: Any) -> None:
                sent[i] = as_edit(texts[i], g)
                done(i, sent[i])

            gens = self.runtime.generate(prompts, max_new_tokens=limit, sources=texts, on_done=each)
            for i, g in enumerate(gens):
                if i not in sent:  # e.g. a prompt too long for the batch, decoded on its own
                    each(i, g)
            return [sent[i] for i in range(len(texts))]
        gens = self.runtime.generate(prompts, max_new_tokens=limit, sources=texts)
        return _report(done, [as_edit(t, g) for t, g in zip(texts, gens, strict=True)])

    def close(self) -> None:
        self.runtime.close()


class PrePassEditor:
    """``pre`` edits first; ``main`` edits what ``pre`` returned (e.g. Harper's spelling fixes, then
    the model). Timings add up."""

    def __init__(self, pre: Any, main: Any) -> None:
        self.pre, self.main = pre, main
        self.name = f"{pre.name}+{main.name}"
        self.batches = main.batches
        self.runtime = main.runtime

    def budget(self, text: str) -> int:
        return self.main.budget(text)

    def edit(self, task: str, texts: list[str], done: Done | None = None) -> list[Edit]:
        first = self.pre.edit(task, texts)

        def each(i: int, e: Edit) -> None:
            e.ttft_s += first[i].ttft_s + first[i].decode_s
            if done is not None:
                done(i, e)

        return self.main.edit(task, [e.output or t for e, t in zip(first, texts, strict=True)], done=each)

    def close(self) -> None:
        self.pre.close()
        self.main.close()


def load_editor(
    artifact: Path | str,
    device: str = "cpu",
    threads: int | None = None,
    batch_size: int = 8,
    pre: str | None = None,
    n_ctx: int | None = None,
    policy: Path | str | None = None,
    threshold: float | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Any, dict]:
    """The editor for an artifact folder or a system name (copy, harper), optionally behind a pre-pass,
    and the artifact's manifest ({"kind": "system"} for a system). ``n_ctx``: the llama.cpp runtime's
    KV-cache cells (default 2,048). ``policy``: "auto" applies the per-task policy kept beside the adapter
    the model was made from (edgewrite.edit.policy), a path applies that file, None none; ``threshold``
    drops the model's edits below that confidence whatever the policy says."""
    from edgewrite.edit.policy import PolicyEditor, check_threshold, policy_for

    check_pre(pre)
    check_threshold(threshold)
    if str(artifact) in SYSTEMS and not Path(artifact).exists():
        if threshold:
            from edgewrite.edit.confidence import CONFIDENCE_RUNTIMES

            raise EdgewriteError(
                f"--threshold: {artifact} is not a model and gives no confidence; runtimes that do: "
                + ", ".join(CONFIDENCE_RUNTIMES)
            )
        editor, manifest = load_system(str(artifact)), {"kind": "system", "name": str(artifact)}
    else:
        from edgewrite.runtimes import load_runtime

        runtime, manifest = load_runtime(artifact, device=device, threads=threads, batch_size=batch_size, n_ctx=n_ctx)
        from edgewrite.tasks import style_of

        editor = ModelEditor(runtime, style_of(manifest, runtime.tokenizer))
        chosen = None
        if policy is not None:
            where = None if str(policy) == "auto" else Path(policy)
            chosen = policy_for(Path(artifact), where, log or (lambda line: None))
        if policy is not None or threshold is not None:  # the interfaces: every edit with its confidence
            editor = PolicyEditor(editor, chosen, threshold)
            if chosen is not None or threshold is not None:
                manifest = {**manifest, "policy": chosen.source if chosen else None, "threshold": threshold}
    if pre:
        editor = PrePassEditor(load_system(pre), editor)
    return editor, manifest


def timed(edits: list[Edit], wall: float) -> list[dict[str, Any]]:
    """Per-edit timing records; ``wall`` is the time of the call that made all of them."""
    return [
        {
            "ttft_s": e.ttft_s,
            "decode_s": e.decode_s,
            "new_tokens": e.new_tokens,
            "prompt_tokens": e.prompt_tokens,
            "wall_s": wall / len(edits),
        }
        for e in edits
    ]


def edit_timed(editor: Any, task: str, texts: list[str]) -> tuple[list[Edit], list[dict[str, Any]]]:
    t0 = time.perf_counter()
    edits = editor.edit(task, texts)
    return edits, timed(edits, time.perf_counter() - t0)
