"""``edgewrite check PATH...``: the edit path as a linter over many files, for a pre-commit hook or CI.

Files, folders (their text files: Markdown, plain text, reStructuredText, AsciiDoc) and globs are read,
cut into units by the same segmentation as assist (code blocks, front matter and ignored lines are
never checked), edited in batches across files (a unit that appears twice is edited once), and every
change comes back as one suggestion with its span, kind and reason. A file that cannot be read as text
is skipped with a warning and the others are still checked; a file that changed while it was being
checked gets no suggestions (they would point at the wrong text) and a warning to run again.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgewrite.edit.spans import Suggestion, document_suggestions, line_column
from edgewrite.edit.text import units_with_offsets
from edgewrite.errors import EdgewriteError

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".mdx", ".txt", ".text", ".rst", ".adoc", ".asciidoc"})
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tox", "build", "dist"})


@dataclass
class CheckedFile:
    path: Path
    text: str
    suggestions: list[Suggestion]


def _is_glob(arg: str) -> bool:
    return any(ch in arg for ch in "*?[")


def _folder_files(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(p in _SKIP_DIRS or (p.startswith(".") and p not in (".", "..")) for p in parts[:-1]):
            continue
        if path.is_file() and path.suffix.lower() in TEXT_SUFFIXES:
            found.append(path)
    return found


def collect_files(args: Sequence[str]) -> list[Path]:
    """The files that ``args`` name: files as given, folders' text files, globs' matches (``**`` too).
    A path that does not exist, a glob that matches nothing or a folder with no text file is one error."""
    if not args:
        raise EdgewriteError("give at least one file, folder or glob to check")
    files: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = _folder_files(path)
            if not found:
                kinds = ", ".join(sorted(TEXT_SUFFIXES))
                raise EdgewriteError(f"{arg} holds no text files ({kinds}); name files to check them anyway")
            files.extend(found)
        elif _is_glob(arg):
            matches = sorted(Path(p) for p in glob.glob(arg, recursive=True) if Path(p).is_file())
            if not matches:
                raise EdgewriteError(f"{arg} matches no file")
            files.extend(matches)
        else:
            raise EdgewriteError(f"{arg} does not exist")
    return list(dict.fromkeys(files))


def read_text_file(path: Path) -> tuple[str | None, str | None]:
    """(text, None), or (None, why it is skipped) for a binary or non-UTF-8 file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return None, f"cannot read it ({e.strerror or e})"
    if b"\x00" in data[:8192]:
        return None, "binary file"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"not UTF-8 text (byte {e.start})"


def check_files(
    editor: Any,
    files: Sequence[Path],
    task: str,
    batch_size: int = 8,
    warn: Callable[[str], None] = lambda line: None,
    progress: Callable[[int], None] | None = None,
    on_units: Callable[[int], None] | None = None,
) -> list[CheckedFile]:
    """Every file's suggestions (files that could not be read, or changed meanwhile, are left out with a
    warning). ``on_units(n)`` hears the number of distinct units before editing starts; ``progress(k)``
    as each batch of k is done."""
    from edgewrite.assist import edit_texts
    from edgewrite.tasks import TASKS

    unit = TASKS[task].unit
    read: list[tuple[Path, str, str, list[tuple[int, str]]]] = []
    for path in files:
        text, why = read_text_file(path)
        if text is None:
            warn(f"{path}: skipped: {why}")
            continue
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        read.append((path, text, digest, units_with_offsets(text, unit)))
    distinct = list(dict.fromkeys(u for *_, units in read for _, u in units))
    if on_units:
        on_units(len(distinct))
    edited = dict(zip(distinct, edit_texts(editor, distinct, task, batch_size, progress, log=warn), strict=True))
    out = []
    for path, text, digest, units in read:
        now, _ = read_text_file(path)
        if now is None or hashlib.sha256(now.encode("utf-8")).hexdigest() != digest:
            warn(f"{path}: changed while being checked; its suggestions are left out: run the check again")
            continue
        out.append(CheckedFile(path, text, document_suggestions([(o, u, edited[u]) for o, u in units])))
    return out


def _show(text: str, limit: int = 60) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def located(checked: CheckedFile) -> list[dict]:
    """The file's suggestions as records with 1-based line and column (code points) of both ends."""
    where = line_column(checked.text, [o for s in checked.suggestions for o in (s.start, s.end)])
    rows = []
    for s in checked.suggestions:
        (l0, c0), (l1, c1) = where[s.start], where[s.end]
        rows.append(
            {"path": str(checked.path), "line": l0 + 1, "column": c0 + 1, "end_line": l1 + 1, "end_column": c1 + 1}
            | s.to_dict()
        )
    return rows


def format_row(row: dict, fmt: str = "text") -> str:
    """``path:line:col: kind: original → replacement (reason)``, or one JSON object."""
    if fmt == "json":
        return json.dumps(row, ensure_ascii=False)
    original = _show(row["original"].strip()) or "∅"
    replacement = _show(row["replacement"].strip()) or "∅"
    sure = f"; confidence {row['confidence']:.2f}" if row.get("confidence") is not None else ""
    return (
        f"{row['path']}:{row['line']}:{row['column']}: {row['kind']}: {original} → {replacement} "
        f"({row['reason']}{sure})"
    )
