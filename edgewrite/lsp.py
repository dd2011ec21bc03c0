"""``edgewrite lsp``: a language server over stdio, so any editor with an LSP client gets edits inline.

On open and change of a plain-text, Markdown or git commit document, after a short debounce, every
unit (sentence; paragraph for coherence) is edited through the shared edit path (assist's
segmentation, then the editor: the model, a pre-pass, or Harper alone) in one background worker
thread, so requests never wait for the model. A unit the editor would change becomes a diagnostic
whose quick-fix code action applies the edit. Results are cached per (task, unit text): an unchanged
sentence never runs twice. Through pygls, the maintained Python LSP framework (pygls 2.x).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from edgewrite import __version__

SOURCE = "edgewrite"
MAX_UNIT_CHARS = 2000  # a longer "sentence" (a pasted log line, a 5 MB line) is not sent to the model
CACHE_SIZE = 5000
LANGUAGES = ("plaintext", "markdown", "git-commit", "gitcommit", "text")


@dataclass
class Unit:
    start: int  # offset in the document (code points)
    text: str
    edited: str


def _positions(text: str, offsets: list[int]) -> dict[int, tuple[int, int]]:
    """Code-point offsets -> (line, character in UTF-16 code units), as LSP positions are counted."""
    wanted = sorted(set(offsets))
    out: dict[int, tuple[int, int]] = {}
    line, col, i = 0, 0, 0
    for pos, ch in enumerate(text):
        while i < len(wanted) and wanted[i] == pos:
            out[wanted[i]] = (line, col)
            i += 1
        if ch == "\n":
            line, col = line + 1, 0
        else:
            col += 2 if ord(ch) > 0xFFFF else 1
    while i < len(wanted):
        out[wanted[i]] = (line, col)
        i += 1
    return out


class EditService:
    """The edit path behind the server: segmentation, a bounded cache, one worker thread."""

    def __init__(self, editor: Any, task: str, batch_size: int = 8) -> None:
        self.editor, self.task, self.batch_size = editor, task, batch_size
        self.cache: OrderedDict[str, str] = OrderedDict()
        self.lock = threading.Lock()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgewrite-edit")
        self.model_calls = 0  # units sent to the editor (the cache's hits are not)

    def units(self, text: str, language: str) -> list[Unit]:
        from edgewrite.assist import edit_texts, segment
        from edgewrite.tasks import TASKS

        if language in ("git-commit", "gitcommit"):  # comment lines of a commit message are not prose
            text = "\n".join(" " * len(line) if line.startswith("#") else line for line in text.split("\n"))
        pieces, starts, offset = [], [], 0
        for piece in segment(text, TASKS[self.task].unit):
            if piece.editable and piece.text.strip() and len(piece.text) <= MAX_UNIT_CHARS:
                pieces.append(piece.text)
                starts.append(offset)
            offset += len(piece.text)
        todo = [p for p in dict.fromkeys(pieces) if p not in self.cache]
        if todo:
            with self.lock:  # the editor is not re-entrant
                edited = edit_texts(self.editor, todo, self.task, self.batch_size)
                self.model_calls += len(todo)
            for before, after in zip(todo, edited, strict=True):
                self.cache[before] = after
                while len(self.cache) > CACHE_SIZE:
                    self.cache.popitem(last=False)
        return [Unit(s, p, self.cache.get(p, p)) for s, p in zip(starts, pieces, strict=True)]


def _diagnostics(text: str, units: list[Unit], task: str) -> list[Any]:
    from lsprotocol import types

    from edgewrite.assist import word_diff

    changed = [u for u in units if u.edited.strip() and u.edited != u.text]
    where = _positions(text, [o for u in changed for o in (u.start, u.start + len(u.text))])
    out = []
    for u in changed:
        (l0, c0), (l1, c1) = where[u.start], where[u.start + len(u.text)]
        runs = [f"{'−' if op == '-' else '+'}{t.strip()}" for op, t in word_diff(u.text, u.edited) if op != "="]
        out.append(
            types.Diagnostic(
                range=types.Range(types.Position(l0, c0), types.Position(l1, c1)),
                message=f"{task}: {' '.join(runs)[:200]}",
                severity=types.DiagnosticSeverity.Information,
                source=SOURCE,
                data={"replacement": u.edited},
            )
        )
    return out


def create_server(service: EditService, debounce_s: float = 0.4) -> Any:
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer

    server = LanguageServer("edgewrite", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
    generation: dict[str, int] = {}

    async def analyse(uri: str) -> None:
        mine = generation[uri] = generation.get(uri, 0) + 1
        await asyncio.sleep(debounce_s)
        if generation.get(uri) != mine:
            return  # a newer change came in: that one will be analysed
        doc = server.workspace.get_text_document(uri)
        if doc.language_id and doc.language_id not in LANGUAGES:
            return  # prose only: source code and other languages are not checked
        text = doc.source
        if "\x00" in text:
            server.window_log_message(
                types.LogMessageParams(types.MessageType.Warning, f"{uri}: binary content, not checked")
            )
            return
        loop = asyncio.get_running_loop()
        try:
            units = await loop.run_in_executor(service.worker, service.units, text, doc.language_id or "plaintext")
        except Exception as e:  # noqa: BLE001 - one failed document must not take the server down
            server.window_log_message(types.LogMessageParams(types.MessageType.Error, f"{uri}: edit failed: {e}"))
            return
        if generation.get(uri) == mine:
            server.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=_diagnostics(text, units, service.task))
            )

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: Any, params: types.DidOpenTextDocumentParams) -> None:
        await analyse(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: Any, params: types.DidChangeTextDocumentParams) -> None:
        await analyse(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: Any, params: types.DidCloseTextDocumentParams) -> None:
        generation.pop(params.text_document.uri, None)
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(ls: Any, params: types.CodeActionParams) -> list[types.CodeAction]:
        actions = []
        for diag in params.context.diagnostics:
            data = diag.data if isinstance(diag.data, dict) else {}
            if diag.source != SOURCE or not isinstance(data.get("replacement"), str):
                continue
            edit = types.TextEdit(range=diag.range, new_text=data["replacement"])
            actions.append(
                types.CodeAction(
                    title=f"edgewrite: {data['replacement'][:60]}",
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diag],
                    is_preferred=True,
                    edit=types.WorkspaceEdit(changes={params.text_document.uri: [edit]}),
                )
            )
        return actions

    return server


def serve_stdio(editor: Any, task: str, debounce_s: float = 0.4) -> None:
    create_server(EditService(editor, task), debounce_s).start_io()
