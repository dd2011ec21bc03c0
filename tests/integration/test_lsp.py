"""`edgewrite lsp` driven end to end by a real LSP client (pytest-lsp runs the server as a subprocess)."""

import asyncio
import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = [sys.executable, "-m", "edgewrite.cli", "lsp", "--model", "harper", "--debounce", "0.05"]
URI = "file:///tmp/edgewrite-lsp/notes.txt"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(capabilities=types.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, text: str, uri: str = URI, language: str = "plaintext") -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text))
    )


def _cut(line: str, character: int) -> tuple[str, str]:
    """A line split at an LSP column (UTF-16 code units), as an editor applies a TextEdit."""
    units = line.encode("utf-16-le")
    return units[: 2 * character].decode("utf-16-le"), units[2 * character :].decode("utf-16-le")


def _apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.split("\n")
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        s, t = e.range.start, e.range.end
        before = "\n".join(lines[: s.line] + [_cut(lines[s.line], s.character)[0]])
        after = "\n".join([_cut(lines[t.line], t.character)[1]] + lines[t.line + 1 :])
        lines = (before + e.new_text + after).split("\n")
    return "\n".join(lines)


def _send_raw(client: LanguageClient, payload: dict) -> None:
    """Send a message as raw JSON, bypassing the client's typed serialization (to send malformed params)."""
    client.protocol._send_data({"jsonrpc": "2.0", **payload})


async def _diagnostics(client: LanguageClient, uri: str = URI) -> list[types.Diagnostic]:
    await asyncio.wait_for(client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), timeout=60)
    return client.diagnostics[uri]


@pytest.mark.asyncio
async def test_a_diagnostic_and_its_code_action_correct_the_text(client: LanguageClient) -> None:
    text = "# Notes\n\nShe go to school every days. This sentence is fine.\n"
    _open(client, text, language="markdown")
    (diag,) = await _diagnostics(client)
    assert diag.source == "edgewrite" and diag.range.start.line == 2 and "goes" in diag.message
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag]),
        )
    )
    (action,) = actions
    assert action.kind == types.CodeActionKind.QuickFix
    fixed = _apply(text, action.edit.changes[URI])
    assert fixed == "# Notes\n\nShe goes to school every days. This sentence is fine.\n"


@pytest.mark.asyncio
async def test_changes_are_debounced_and_bad_input_is_survived(client: LanguageClient) -> None:
    _open(client, "Fine text here.\n")
    assert list(await _diagnostics(client)) == []
    huge = "word " * 1_000_000  # a 5 MB line: skipped, never sent to the editor
    for version, text in enumerate(("She go home.\n", "\x00\x01 binary\n", huge + "\n", "He go home.\n"), start=2):
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
    (diag,) = await _diagnostics(client)  # only the last version is checked
    assert "goes" in diag.message and diag.range.start.line == 0
    # A request whose params cannot be read: pygls reports it as an LSP error message; the server lives on.
    _send_raw(client, {"id": "bad-1", "method": types.TEXT_DOCUMENT_CODE_ACTION, "params": {"textDocument": 5}})
    shown = await asyncio.wait_for(client.wait_for_notification(types.WINDOW_SHOW_MESSAGE), timeout=30)
    assert shown.type == types.MessageType.Error
    _open(client, "She go home.\n", uri="file:///tmp/edgewrite-lsp/other.txt")  # still serving
    (diag,) = await _diagnostics(client, "file:///tmp/edgewrite-lsp/other.txt")
    assert diag.source == "edgewrite"


def _code_actions(client: LanguageClient, diags: list[types.Diagnostic], uri: str = URI):
    return client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=diags[0].range,
            context=types.CodeActionContext(diagnostics=diags),
        )
    )


@pytest.mark.asyncio
async def test_one_diagnostic_per_edit_each_fix_changes_only_its_span(client: LanguageClient) -> None:
    # an emoji (two UTF-16 code units) before the edits and CRLF line ends: positions must still be exact
    text = (
        "# 😀 Notes\r\n\r\n😀 This is a error and she go home. Fine.\r\nHe go out. <!-- edgewrite-ignore-line -->\r\n"
    )
    _open(client, text, language="markdown")
    diags = sorted(await _diagnostics(client), key=lambda d: d.range.start.character)
    assert [d.code for d in diags] == ["determiner", "verb form"]
    assert all(d.range.start.line == 2 for d in diags)  # the ignored line has none
    determiner, verb = diags
    assert (determiner.range.start.character, determiner.range.end.character) == (11, 12)  # 'a' after '😀 This is '
    assert "'go' → 'goes'" in verb.message and "agreement" in verb.message
    actions = await _code_actions(client, [verb])
    single = [a for a in actions if "apply all" not in a.title]
    every = [a for a in actions if "apply all" in a.title]
    assert len(single) == 1 and len(every) == 1
    fixed = _apply(text, single[0].edit.changes[URI])
    assert fixed == text.replace("she go home", "she goes home")  # only its span: 'a error' is still there
    fixed_all = _apply(text, every[0].edit.changes[URI])
    assert fixed_all == text.replace("a error and she go home", "an error and she goes home")
    # a diagnostic whose range no longer holds its text (past the end of a line, or stale) gets no fix
    moved = types.Diagnostic(
        range=types.Range(types.Position(2, 400), types.Position(2, 402)),
        message=verb.message,
        source="edgewrite",
        data=verb.data,
    )
    assert not await _code_actions(client, [moved])


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client_without_determiners(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options={"disabledKinds": ["determiner"]}
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_the_client_switches_kinds_off(client_without_determiners: LanguageClient) -> None:
    client = client_without_determiners
    _open(client, "This is a error and she go home.\n")
    assert [d.code for d in await _diagnostics(client)] == ["verb form"]
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"edgewrite": {"disabledKinds": ["verb form"]}})
    )
    assert [d.code for d in await _diagnostics(client)] == ["determiner"]
