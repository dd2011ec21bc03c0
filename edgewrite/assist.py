"""Offline writing assistance over any artifact: split a document into editable units, edit them in
batches with the shared prompt builder, show a word-level diff, write the result.

Markdown structure that is not prose stays byte-for-byte: blank lines, fenced code blocks, tables,
HTML, headings' markers, list bullets and quote markers (the text after a marker is edited).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgewrite.edit.spans import apply_suggestions, protected_spans, suggestions
from edgewrite.edit.text import Piece, segment, split_sentences, word_diff  # noqa: F401 - assist's public names
from edgewrite.errors import EdgewriteError


def read_input(source: str) -> str:
    import sys

    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise EdgewriteError(f"{source} does not exist or is not a file")
        data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise EdgewriteError(f"{source} looks like a binary file; give UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EdgewriteError(f"{source} is not UTF-8 text (byte {e.start})") from e
    if not text.strip():
        raise EdgewriteError(f"{source} is empty: nothing to edit")
    return text


MAX_UNIT_CHARS = 2000  # longer "sentences" (a 5 MB line with no sentence end) are kept as they are


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _keep_unterminated(original: str, edited: str) -> str:
    """A heading or list item without final punctuation stays without it (models like to add a period)."""
    if original.rstrip()[-1:] not in ".!?:;" and edited.endswith(".") and not edited.endswith(".."):
        return edited[:-1].rstrip()
    return edited


def edit_texts(
    editor: Any,
    texts: list[str],
    task: str,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    edits: dict[int, Any] | None = None,
    done: Callable[[int, str], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[str]:
    """Edited versions of ``texts`` (``editor``: see edgewrite.edit). A unit that comes back empty, or cut
    off (finish "length": the token budget or the context ran out mid-answer), keeps its original text;
    units without a letter are not sent, nor are units over MAX_UNIT_CHARS (a pasted log line, minified
    text: no runtime could answer them within its context), each said once to ``log``. ``edits``, if
    given, receives each sent unit's Edit (with its timings) by index; ``done(i, text)`` hears of each
    sent unit as soon as it is edited."""
    out = list(texts)
    todo = []
    for i, t in enumerate(texts):
        if len(t) > MAX_UNIT_CHARS:
            if log:
                log(f"a unit of {len(t):,} characters is too long to edit (over {MAX_UNIT_CHARS:,}); kept as it is")
        elif re.search(r"[A-Za-z]", t):
            todo.append(i)
    for chunk in _batches(todo, batch_size):

        def each(k: int, e: Any, chunk: list[int] = chunk) -> None:
            i = chunk[k]
            if edits is not None:
                edits[i] = e
            edited = _keep_unterminated(texts[i], e.output)
            if edited and protected_spans(texts[i]):  # inline code and URLs stay as written
                edited = apply_suggestions(texts[i].strip(), suggestions(texts[i].strip(), edited))[0]
            if edited and e.finish != "length":
                lead = texts[i][: len(texts[i]) - len(texts[i].lstrip())]
                tail = texts[i][len(texts[i].rstrip()) :]
                out[i] = lead + edited + tail
            if done is not None:
                done(i, out[i])

        editor.edit(task, [texts[i].strip() for i in chunk], done=each)
        if progress:
            progress(len(chunk))
    return out


def assist_document(
    editor: Any,
    document: str,
    task: str,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[str, list[Piece], list[str]]:
    from edgewrite.tasks import TASKS

    pieces = segment(document, TASKS[task].unit)
    editable = [i for i, p in enumerate(pieces) if p.editable]
    edited = edit_texts(editor, [pieces[i].text for i in editable], task, batch_size, progress, log=log)
    result = [p.text for p in pieces]
    for i, text in zip(editable, edited, strict=True):
        result[i] = text
    return "".join(result), pieces, result


def piece_suggestions(pieces: list[Piece], result: list[str]) -> list[Any]:
    """The individual edits (edgewrite.edit.spans.Suggestion, spans in the document) that turn the
    pieces' text into ``result`` (assist_document's third value)."""
    from edgewrite.edit.spans import document_suggestions

    units, offset = [], 0
    for piece, after in zip(pieces, result, strict=True):
        if piece.editable and after != piece.text:
            units.append((offset, piece.text, after))
        offset += len(piece.text)
    return document_suggestions(units)


def check_writable(target: Path) -> None:
    """Fail before any work if ``target`` cannot be written (a folder, a missing or read-only folder)."""
    if target.is_dir():
        raise EdgewriteError(f"{target} is a folder; give a file to write")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise EdgewriteError(f"cannot write {target}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise EdgewriteError(f"cannot write {target}: permission denied; choose a writable --out")


def write_output(text: str, target: Path, backup: bool) -> None:
    """Atomic write; with ``backup`` the previous file is kept as <name>.bak first."""
    tmp = target.with_name(f".{target.name}.edgewrite.tmp")
    tmp.write_text(text, encoding="utf-8")
    if backup and target.exists():
        shutil.copy2(target, target.with_name(target.name + ".bak"))
    os.replace(tmp, target)
