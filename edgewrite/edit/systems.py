"""Editors that are not models: ``copy`` (the bar to clear) and Harper (the rule-based checker), usable
as a system of their own or as a pre-pass in front of a model."""

from __future__ import annotations

from typing import Any

from edgewrite.edit.base import Done, Edit, _report
from edgewrite.errors import EdgewriteError

COPY = "copy"
PRE_PASSES = ("harper",)


class CopyEditor:
    """Returns every text unchanged: the bar any system has to clear."""

    name = COPY
    batches = True
    runtime = None  # no model to chat with

    def budget(self, text: str) -> int:
        return len(text.split())

    def edit(self, task: str, texts: list[str], done: Done | None = None) -> list[Edit]:
        return _report(done, [Edit(output=t, raw=t) for t in texts])

    def close(self) -> None:
        pass


def check_pre(pre: str | None) -> None:
    if pre is not None and pre not in PRE_PASSES:
        raise EdgewriteError(f"--pre {pre}: unknown pre-pass; available: {', '.join(PRE_PASSES)}")


def load_system(name: str) -> Any:
    """An editor that is not a model: copy or harper."""
    if name == COPY:
        return CopyEditor()
    if name == "harper":
        from edgewrite.edit.harper import HarperEditor

        return HarperEditor()
    raise EdgewriteError(f"unknown system '{name}'; systems: copy, harper")


SYSTEMS = (COPY, "harper")
