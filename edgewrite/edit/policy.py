"""A per-task policy in place of global switches: which pre-pass, whether the model makes a second pass over
its own output (GEC systems often iterate), and which confidence threshold drops the model's unsure edits,
chosen on dev (benchmarks/edit_confidence.py) and kept as a small file beside the
adapter it was chosen for (``policy.json``).

A policy applies to the models made from that adapter (its merge and every export of the merge: the
manifests' parent chain names it). A file that is missing, malformed or made for another model is said in
one line, and the model runs without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgewrite.edit.spans import apply_suggestions, remember_confidences
from edgewrite.errors import EdgewriteError

POLICY_FILE = "policy.json"


@dataclass(frozen=True)
class TaskPolicy:
    pre: str | None = None  # a pre-pass system ("harper") or none
    threshold: float | None = None  # drop the model's edits whose confidence is below this
    passes: int = 1  # 2: the model edits its own output once more (the edits are then those of both passes)


@dataclass
class Policy:
    adapter_fingerprint: str
    tasks: dict[str, TaskPolicy] = field(default_factory=dict)
    source: str = ""

    def of(self, task: str) -> TaskPolicy:
        return self.tasks.get(task, TaskPolicy())


def check_threshold(value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise EdgewriteError(f"--threshold {value}: a confidence threshold is between 0 and 1 (0: keep every edit)")


def read_policy(path: Path) -> Policy:
    """The policy in ``path``; EdgewriteError (one line) if it cannot be used."""
    from edgewrite.edit.systems import PRE_PASSES
    from edgewrite.tasks import TASKS

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgewriteError(f"policy {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgewriteError(f"policy {path} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), dict) or not doc.get("adapter_fingerprint"):
        raise EdgewriteError(f"policy {path} is malformed: it needs 'adapter_fingerprint' and 'tasks'")
    tasks = {}
    for task, entry in doc["tasks"].items():
        if task not in TASKS or not isinstance(entry, dict):
            raise EdgewriteError(f"policy {path} is malformed: unknown task '{task}'")
        pre, threshold = entry.get("pre"), entry.get("threshold")
        if pre is not None and pre not in PRE_PASSES:
            raise EdgewriteError(f"policy {path} is malformed: {task}: unknown pre-pass '{pre}'")
        if threshold is not None and (not isinstance(threshold, int | float) or not 0 <= threshold <= 1):
            raise EdgewriteError(f"policy {path} is malformed: {task}: threshold {threshold!r} is not in [0, 1]")
        passes = entry.get("passes", 1)
        if passes not in (1, 2) or isinstance(passes, bool):
            raise EdgewriteError(f"policy {path} is malformed: {task}: passes {passes!r} is not 1 or 2")
        tasks[task] = TaskPolicy(pre, None if threshold is None else float(threshold), passes)
    return Policy(str(doc["adapter_fingerprint"]), tasks, str(path))


def lineage(artifact: Path, depth: int = 4) -> set[str]:
    """Fingerprints of an artifact and the artifacts it was made from (parent, its parent, ...)."""
    from edgewrite.artifacts import read_manifest

    found: set[str] = set()
    path: Path | None = artifact
    for _ in range(depth):
        if path is None or not (path / "manifest.json").is_file():
            break
        manifest = read_manifest(path)
        if manifest.get("fingerprint"):
            found.add(str(manifest["fingerprint"]))
        parent = manifest.get("parent") or {}
        if parent.get("fingerprint"):
            found.add(str(parent["fingerprint"]))
        path = Path(parent["path"]) if parent.get("path") else None
    return found


def policy_for(artifact: Path, path: Path | None, log: Callable[[str], None]) -> Policy | None:
    """The policy that applies to ``artifact``: ``path`` if given, else the one beside the adapter it was
    made from. Unusable: one line to ``log`` and None (the model runs without a policy)."""
    if path is None:
        for candidate in _ancestor_folders(artifact):
            if (candidate / POLICY_FILE).is_file():
                path = candidate / POLICY_FILE
                break
        else:
            return None
    try:
        policy = read_policy(path)
    except EdgewriteError as e:
        log(f"{e}; running without a policy")
        return None
    if policy.adapter_fingerprint not in lineage(artifact):
        log(f"policy {path} was made for another model; running without a policy")
        return None
    return policy


def _ancestor_folders(artifact: Path, depth: int = 4) -> list[Path]:
    from edgewrite.artifacts import read_manifest

    out, path = [], artifact
    for _ in range(depth):
        if not (path / "manifest.json").is_file():
            break
        out.append(path)
        parent = (read_manifest(path).get("parent") or {}).get("path")
        if not parent:
            break
        path = Path(parent)
    return out


class PolicyEditor:
    """A model editor under a policy: per task, an optional pre-pass, then the model (twice, where the policy
    says so), then its edits whose confidence is below the task's threshold dropped. Every edit gets its
    confidence (one teacher-forced pass over each unit the model changed); each Edit carries its suggestions
    in ``edit.suggestions``."""

    def __init__(self, main: Any, policy: Policy | None, threshold: float | None = None) -> None:
        self.main, self.policy, self.threshold = main, policy, threshold
        self.name = main.name
        self.batches = main.batches
        self.runtime = main.runtime
        self._pre: dict[str, Any] = {}

    def budget(self, text: str) -> int:
        return self.main.budget(text)

    def rule(self, task: str) -> TaskPolicy:
        base = self.policy.of(task) if self.policy else TaskPolicy()
        return TaskPolicy(base.pre, self.threshold if self.threshold is not None else base.threshold, base.passes)

    def edit(self, task: str, texts: list[str], done: Any = None) -> list[Any]:
        from edgewrite.edit.systems import load_system

        rule = self.rule(task)
        inputs = list(texts)
        if rule.pre:
            pre = self._pre.setdefault(rule.pre, load_system(rule.pre))
            inputs = [e.output or t for e, t in zip(pre.edit(task, texts), texts, strict=True)]

        # the confidences need the runtime, which is busy until the whole batch is decoded (llama.cpp holds
        # its context through a batch and reports each sequence from inside it): score after, then report
        edits = self.main.edit(task, inputs)
        if rule.passes > 1:  # the model over its own output; a unit cut off at the token budget stays as it was
            again = self.main.edit(task, [e.output or t for e, t in zip(edits, inputs, strict=True)])
            for e, e2 in zip(edits, again, strict=True):
                e.prompt_tokens += e2.prompt_tokens
                e.new_tokens += e2.new_tokens
                e.decode_s += e2.ttft_s + e2.decode_s
                if e.finish != "length" and e2.finish != "length" and e2.output:
                    e.output, e.raw = e2.output, e2.raw
        for i, e in enumerate(edits):
            self._filter(task, inputs[i], e, rule.threshold or 0.0)
            if done is not None:
                done(i, e)
        return edits

    def _filter(self, task: str, source: str, e: Any, threshold: float) -> None:
        from edgewrite.edit.confidence import unit_confidences

        if e.finish == "length" or not e.output or e.output == source:
            return
        found = unit_confidences(self.runtime, self.main.prompt(task, source), source, e.output)
        kept = [s for s in found if s.confidence is None or s.confidence >= threshold]
        e.suggestions = kept
        if len(kept) < len(found):
            e.output = apply_suggestions(source, kept)[0]
        remember_confidences(source, e.output, kept)

    def close(self) -> None:
        for pre in self._pre.values():
            pre.close()
        self.main.close()
