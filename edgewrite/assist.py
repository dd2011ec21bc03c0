"""Offline writing assistance over any artifact: split a document into editable units, edit them in
batches with the shared prompt builder, show a word-level diff, write the result.

Markdown structure that is not prose stays byte-for-byte: blank lines, fenced code blocks, tables,
HTML, headings' markers, list bullets and quote markers (the text after a marker is edited).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError

_FENCE = re.compile(r"^\s*(```|~~~)")
_PREFIX = re.compile(r"^(\s*(?:[-*+]\s+|\d+[.)]\s+|>\s*)+)")  # list bullets, numbers, quotes
_SKIP = re.compile(r"^\s*(\||<|#{1,6}\s*$|[-=*_]{3,}\s*$)")  # tables, html, empty headings, rules
_HEADING = re.compile(r"^(\s*#{1,6}\s+)")
# A sentence ends at . ! or ? (optionally followed by closing quotes/brackets) before whitespace and
# an upper-case letter, a digit or an opening quote. Abbreviations like "e.g." are left alone.
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"')\]]*)(\s+)(?=[\"'(\[]?[A-Z0-9])")
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|Mr|Mrs|Ms|Dr|Prof|St|No|Fig|cf)\.$", re.IGNORECASE)


@dataclass
class Piece:
    text: str
    editable: bool


def split_sentences(text: str) -> list[Piece]:
    """Sentences (editable) and the whitespace between them (kept)."""
    pieces: list[Piece] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start(2)
        if _ABBREV.search(text[start:end]):
            continue
        pieces.append(Piece(text[start:end], True))
        pieces.append(Piece(m.group(2), False))
        start = m.end(2)
    if start < len(text):
        pieces.append(Piece(text[start:], True))
    return pieces


def segment(document: str, unit: str = "sentence") -> list[Piece]:
    """The document as editable and fixed pieces; joining every piece's text gives it back."""
    pieces: list[Piece] = []
    in_fence = False
    paragraph: list[str] = []

    def flush() -> None:
        if not paragraph:
            return
        block = "".join(paragraph)
        body = block.rstrip("\n")
        trailing = block[len(body) :]
        if unit == "paragraph":
            pieces.append(Piece(body, True))
        else:
            pieces.extend(split_sentences(body))
        if trailing:
            pieces.append(Piece(trailing, False))
        paragraph.clear()

    for line in document.splitlines(keepends=True):
        if _FENCE.match(line):
            flush()
            in_fence = not in_fence
            pieces.append(Piece(line, False))
            continue
        if in_fence or not line.strip() or _SKIP.match(line):
            flush()
            pieces.append(Piece(line, False))
            continue
        marker = _PREFIX.match(line) or _HEADING.match(line)
        if marker:  # a list item, quote or heading: its marker is kept, its text is a unit of its own
            flush()
            content = line[marker.end() :]
            body = content.rstrip("\n")
            pieces.append(Piece(marker.group(1), False))
            pieces.extend(split_sentences(body) if unit == "sentence" else [Piece(body, True)])
            if content[len(body) :]:
                pieces.append(Piece(content[len(body) :], False))
            continue
        paragraph.append(line)
    flush()
    return [p for p in pieces if p.text]


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """(op, text) runs: op is '=', '-' or '+', on word boundaries (whitespace kept with its word)."""
    a, b = re.findall(r"\S+\s*", before), re.findall(r"\S+\s*", after)
    runs = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("=", "".join(a[i1:i2])))
        else:
            if i2 > i1:
                runs.append(("-", "".join(a[i1:i2])))
            if j2 > j1:
                runs.append(("+", "".join(b[j1:j2])))
    return runs


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
) -> list[str]:
    """Edited versions of ``texts`` (``editor``: see edgewrite.edit). A unit that comes back empty, or cut
    off (finish "length": the token budget or the context ran out mid-answer), keeps its original text;
    units without a letter are not sent. ``edits``, if given, receives each sent unit's
    Edit (with its timings) by index; ``done(i, text)`` hears of each sent unit as soon as it is edited."""
    out = list(texts)
    todo = [i for i, t in enumerate(texts) if re.search(r"[A-Za-z]", t)]
    for chunk in _batches(todo, batch_size):

        def each(k: int, e: Any, chunk: list[int] = chunk) -> None:
            i = chunk[k]
            if edits is not None:
                edits[i] = e
            edited = _keep_unterminated(texts[i], e.output)
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
) -> tuple[str, list[Piece], list[str]]:
    from edgewrite.tasks import TASKS

    pieces = segment(document, TASKS[task].unit)
    editable = [i for i, p in enumerate(pieces) if p.editable]
    edited = edit_texts(editor, [pieces[i].text for i in editable], task, batch_size, progress)
    result = [p.text for p in pieces]
    for i, text in zip(editable, edited, strict=True):
        result[i] = text
    return "".join(result), pieces, result


def default_artifact(device: str = "cpu", log: Callable[[str], None] | None = None) -> Path:
    """What assist, serve and generate use without --model: the artifact the last `edgewrite report`
    recommended for the device; else the shipped tuned `writing` model in its serving format (merged and
    exported once, on first use, into the cache); else the embedded base model."""
    from edgewrite.models import DEFAULT, SHIPPED_DIR, WRITING, resolve_model, shipped_adapter
    from edgewrite.report import recommended_artifact

    if pick := recommended_artifact(device):
        return Path(pick)
    if not (SHIPPED_DIR / WRITING).is_dir():
        return resolve_model(DEFAULT).path
    from edgewrite.artifacts import read_manifest
    from edgewrite.quantize import quantize

    serve = read_manifest(shipped_adapter(WRITING)).get("serve") or {"format": "gguf", "bits": 4}
    merged = resolve_model(WRITING).path
    if log:
        kind = serve.get("type") or f"{serve['bits']}-bit"
        kind += " with its importance matrix" if serve.get("imatrix") else ""
        kind += ", rounded as AutoRound tuned it" if serve.get("rounding") else ""
        log(f"using the shipped '{WRITING}' model ({serve['format']} {kind}; made once, then cached)")
    # an importance matrix or a tuned rounding that shipped with the adapter rounds the user's export the way
    # the benched one was
    folder = shipped_adapter(WRITING)
    matrix = folder / serve["imatrix"] if serve.get("imatrix") else False
    rounding = folder / serve["rounding"] if serve.get("rounding") else None
    path, _ = quantize(
        str(merged),
        serve["format"],
        serve["bits"],
        gguf_type=serve.get("type"),
        imatrix=matrix,
        rounding=rounding,
        force=True,
        log=log or (lambda line: None),  # never stdout: that is where the edited text goes
    )
    return path


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
