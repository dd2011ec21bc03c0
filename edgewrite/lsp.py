"""``edgewrite lsp``: a language server over stdio, so any editor with an LSP client gets edits inline.

On open and change of a plain-text, Markdown or git commit document, after a short debounce, every
unit (sentence; paragraph for coherence) is edited through the shared edit path (assist's
segmentation, then the editor: the model, a pre-pass, or Harper alone) in one background worker
thread, so requests never wait for the model. Each individual edit of a unit (edgewrite.edit.spans: a
span, a kind, a reason) becomes a diagnostic with a quick fix that changes only its span, plus a fix
that applies every edit of its sentence. Positions are counted in UTF-16 code units, as LSP counts
them. Kinds can be switched off by the client (``initializationOptions`` or the ``edgewrite`` section
of ``workspace/didChangeConfiguration``: ``{"disabledKinds": ["rewrite"]}``); lines and files are kept
out with ``edgewrite-ignore-line`` / ``-next-line`` / ``-file`` comments. A fix whose span no longer
holds its original text (a stale or misbehaving client) is not offered. Results are cached per (task,
unit text): an unchanged sentence never runs twice. Through pygls, the maintained Python LSP framework
(pygls 2.x).
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
CACHE_SIZE = 5000
LANGUAGES = ("plaintext", "markdown", "git-commit", "gitcommit", "text")


@dataclass
class Unit:
    start: int  # offset in the document (code points)
    text: str
    edited: str


class EditService:
    """The edit path behind the server: segmentation, a bounded cache, one worker thread."""

    def __init__(self, editor: Any, task: str, batch_size: int = 8) -> None:
        self.editor, self.task, self.batch_size = editor, task, batch_size
        self.cache: OrderedDict[str, str] = OrderedDict()
        self.lock = threading.Lock()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgewrite-edit")
        self.model_calls = 0  # units sent to the editor (the cache's hits are not)

    def units(self, text: str, language: str) -> list[Unit]:
        from edgewrite.assist import MAX_UNIT_CHARS, edit_texts, segment
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


def _diagnostics(text: str, units: list[Unit], disabled: set[str] = frozenset()) -> list[Any]:
    """One diagnostic per individual edit; its data carries its own fix and every fix of its sentence."""
    from lsprotocol import types

    from edgewrite.edit.spans import line_column, suggestions

    groups = []
    for u in units:
        if u.edited.strip() and u.edited != u.text:
            found = [s.shifted(u.start) for s in suggestions(u.text, u.edited) if s.kind not in disabled]
            if found:
                groups.append(found)
    where = line_column(text, [o for g in groups for s in g for o in (s.start, s.end)], utf16=True)
    out = []
    for group in groups:
        fixes = [[*where[s.start], *where[s.end], s.replacement, s.original] for s in group]
        for s, fix in zip(group, fixes, strict=True):
            out.append(
                types.Diagnostic(
                    range=types.Range(types.Position(fix[0], fix[1]), types.Position(fix[2], fix[3])),
                    message=s.reason if s.confidence is None else f"{s.reason} (confidence {s.confidence:.2f})",
                    severity=types.DiagnosticSeverity.Information,
                    code=s.kind,
                    source=SOURCE,
                    data={"replacement": s.replacement, "original": s.original, "sentence": fixes},
                )
            )
    return out


def _offset(lines: list[str], line: int, character: int) -> int | None:
    """A code-point offset from an LSP position (UTF-16 column); None past the end of its line."""
    if not 0 <= line < len(lines) or character < 0:
        return None
    units = 0
    for i, ch in enumerate(lines[line].rstrip("\r\n")):
        if units == character:
            return sum(len(x) for x in lines[:line]) + i
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > character:
            return None  # inside a surrogate pair
    return sum(len(x) for x in lines[:line]) + len(lines[line].rstrip("\r\n")) if units == character else None


def _valid_fixes(text: str, fixes: list) -> list[Any] | None:
    """The fixes as TextEdits when every one still holds its original text, in range and without overlap."""
    from lsprotocol import types

    lines = text.splitlines(keepends=True) or [""]
    spans = []
    for fix in fixes:
        if not (isinstance(fix, list) and len(fix) == 6 and all(isinstance(x, int) for x in fix[:4])):
            return None
        start, end = _offset(lines, fix[0], fix[1]), _offset(lines, fix[2], fix[3])
        if start is None or end is None or end < start or text[start:end] != fix[5] or not isinstance(fix[4], str):
            return None
        spans.append((start, end, fix))
    spans.sort(key=lambda x: (x[0], x[1]))
    if any(b[0] < a[1] or (a[0] == a[1] == b[0] == b[1]) for a, b in zip(spans, spans[1:], strict=False)):
        return None
    return [
        types.TextEdit(range=types.Range(types.Position(f[0], f[1]), types.Position(f[2], f[3])), new_text=f[4])
        for _, _, f in spans
    ]


def _disabled_kinds(settings: Any) -> set[str] | None:
    """``disabledKinds`` from initializationOptions or the ``edgewrite`` settings section (None: not given)."""
    if isinstance(settings, dict) and isinstance(settings.get("edgewrite"), dict):
        settings = settings["edgewrite"]
    if not isinstance(settings, dict) or "disabledKinds" not in settings:
        return None
    kinds = settings["disabledKinds"]
    return {k for k in kinds if isinstance(k, str)} if isinstance(kinds, list) else set()


def create_server(service: EditService, debounce_s: float = 0.4) -> Any:
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer

    server = LanguageServer("edgewrite", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
    generation: dict[str, int] = {}
    disabled: set[str] = set()

    async def analyse(uri: str, wait: bool = True) -> None:
        mine = generation[uri] = generation.get(uri, 0) + 1
        if wait:
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
                types.PublishDiagnosticsParams(uri=uri, diagnostics=_diagnostics(text, units, disabled))
            )

    @server.feature(types.INITIALIZE)
    def initialize(ls: Any, params: types.InitializeParams) -> None:
        kinds = _disabled_kinds(params.initialization_options)
        if kinds is not None:
            disabled.clear()
            disabled.update(kinds)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: Any, params: types.DidChangeConfigurationParams) -> None:
        kinds = _disabled_kinds(params.settings)
        if kinds is None:
            return
        disabled.clear()
        disabled.update(kinds)
        for uri in list(generation):  # republish open documents (their units are cached: no model run)
            await analyse(uri, wait=False)

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
        uri = params.text_document.uri
        text = server.workspace.get_text_document(uri).source
        actions, sentences = [], set()
        for diag in params.context.diagnostics:
            data = diag.data if isinstance(diag.data, dict) else {}
            if diag.source != SOURCE or not isinstance(data.get("replacement"), str):
                continue
            r = diag.range
            own = [r.start.line, r.start.character, r.end.line, r.end.character, data["replacement"]]
            edits = _valid_fixes(text, [[*own, data.get("original")]])
            if edits is None:
                continue  # stale or out of range: never applied
            before, after = str(data.get("original") or "").strip(), data["replacement"].strip()
            title = (
                f"Replace '{before}' with '{after}'"
                if before and after
                else (f"Add '{after}'" if after else f"Remove '{before}'")
            )
            actions.append(
                types.CodeAction(
                    title=f"edgewrite: {title[:80]}",
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diag],
                    is_preferred=True,
                    edit=types.WorkspaceEdit(changes={uri: edits}),
                )
            )
            group = data.get("sentence")
            key = repr(group)
            if isinstance(group, list) and len(group) > 1 and key not in sentences:
                sentences.add(key)
                every = _valid_fixes(text, group)
                if every is not None:
                    actions.append(
                        types.CodeAction(
                            title=f"edgewrite: apply all {len(every)} edits of this sentence",
                            kind=types.CodeActionKind.QuickFix,
                            diagnostics=[diag],
                            edit=types.WorkspaceEdit(changes={uri: every}),
                        )
                    )
        return actions

    return server


def serve_stdio(editor: Any, task: str, debounce_s: float = 0.4) -> None:
    create_server(EditService(editor, task), debounce_s).start_io()
