"""Text around the edit path: a document cut into editable units and fixed pieces, and word diffs.

Markdown structure that is not prose stays byte-for-byte: blank lines, fenced code blocks, YAML front
matter, tables, HTML, headings' markers, list bullets and quote markers (the text after a marker is
edited). A writer can keep lines or a whole file out of every command (assist, check, lsp, serve):
a line with an ``edgewrite-ignore-line`` comment is not edited, nor is the line after an
``edgewrite-ignore-next-line`` comment, nor any line of a document with an ``edgewrite-ignore-file``
comment (``<!-- edgewrite-ignore-line -->``, ``# edgewrite-ignore-file``, ``// ...``), as markdownlint and
eslint let their users do; the words in prose (a README that documents them) are not directives.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

IGNORE_LINE = "edgewrite-ignore-line"
IGNORE_NEXT_LINE = "edgewrite-ignore-next-line"
IGNORE_FILE = "edgewrite-ignore-file"

_FENCE = re.compile(r"^\s*(```|~~~)")
_PREFIX = re.compile(r"^(\s*(?:[-*+]\s+|\d+[.)]\s+|>\s*)+)")  # list bullets, numbers, quotes
_SKIP = re.compile(r"^\s*(\||<|#{1,6}\s*$|[-=*_]{3,}\s*$)")  # tables, html, empty headings, rules
_HEADING = re.compile(r"^(\s*#{1,6}\s+)")
_FRONT_MATTER_END = re.compile(r"^(---|\.\.\.)\s*$")
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


# a directive inside a comment (<!-- ... -->, #, //, %, ;), not the words in prose that talk about it
_DIRECTIVE = re.compile(r"(?:<!--|#|//|%|;)\s*(edgewrite-ignore-(?:next-line|line|file))\b")


def _directives(line: str) -> set[str]:
    return set(_DIRECTIVE.findall(line))


def _fixed_lines(lines: list[str]) -> set[int]:
    """Indices of lines no command edits: YAML front matter and the writer's ignore comments."""
    if any(IGNORE_FILE in _directives(line) for line in lines):
        return set(range(len(lines)))
    fixed: set[int] = set()
    if lines and lines[0].rstrip("\r\n") == "---":  # front matter: up to the closing --- or ...
        for i in range(1, len(lines)):
            if _FRONT_MATTER_END.match(lines[i].rstrip("\r\n")):
                fixed.update(range(i + 1))
                break
    for i, line in enumerate(lines):
        found = _directives(line)
        if IGNORE_LINE in found:
            fixed.add(i)
        if IGNORE_NEXT_LINE in found:
            fixed.update((i, i + 1))
    return fixed


def segment(document: str, unit: str = "sentence") -> list[Piece]:
    """The document as editable and fixed pieces; joining every piece's text gives it back."""
    pieces: list[Piece] = []
    in_fence = False
    paragraph: list[str] = []

    def flush() -> None:
        if not paragraph:
            return
        block = "".join(paragraph)
        body = block.rstrip("\r\n")
        trailing = block[len(body) :]
        if unit == "paragraph":
            pieces.append(Piece(body, True))
        else:
            pieces.extend(split_sentences(body))
        if trailing:
            pieces.append(Piece(trailing, False))
        paragraph.clear()

    lines = document.splitlines(keepends=True)
    fixed = _fixed_lines(lines)
    for number, line in enumerate(lines):
        if number in fixed:
            flush()
            pieces.append(Piece(line, False))
            continue
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
            body = content.rstrip("\r\n")
            pieces.append(Piece(marker.group(1), False))
            pieces.extend(split_sentences(body) if unit == "sentence" else [Piece(body, True)])
            if content[len(body) :]:
                pieces.append(Piece(content[len(body) :], False))
            continue
        paragraph.append(line)
    flush()
    return [p for p in pieces if p.text]


def units_with_offsets(document: str, unit: str = "sentence") -> list[tuple[int, str]]:
    """(code-point offset in the document, text) of every editable unit that holds a letter."""
    out, offset = [], 0
    for piece in segment(document, unit):
        if piece.editable and re.search(r"[^\W\d_]", piece.text):
            out.append((offset, piece.text))
        offset += len(piece.text)
    return out


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
