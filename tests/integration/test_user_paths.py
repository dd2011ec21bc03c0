"""User paths driven by a model that edits: the tiny Llama tuned to answer every unit "Fine." (the
``stopping_model`` fixture), so every prose unit has one known edit. The assertions compare whole documents
and exact spans: they pass only when the right text lands in the right place (an assist that rewrote a code
fence or front matter, or put an answer under the wrong sentence, fails them)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

DOC = (
    "---\ntitle: Notes\n---\n# Notes\n\nShe go to school. He dont like it.\n\n- a item here\n- second item\n\n"
    "```python\nx = 1  # code stays.\n```\n\nLast one here.\n"
)
# every prose unit answered "Fine." (a heading or list item, which had no full stop, gets none), everything
# else byte for byte
EDITED = (
    "---\ntitle: Notes\n---\n# Fine\n\nFine. Fine.\n\n- Fine\n- Fine\n\n```python\nx = 1  # code stays.\n```\n\nFine.\n"
)


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgewrite.cli", *args], capture_output=True, text=True, input=stdin)


@pytest.mark.parametrize("runtime", ["gguf", "onnx"])
def test_assist_out_in_place_and_stdout_put_each_edit_in_its_place(
    stopping_model: dict, runtime: str, tmp_path: Path
) -> None:
    """llama.cpp (what assist serves) and onnxruntime-genai, the same document, the same placement."""
    model = str(stopping_model[runtime])
    doc = tmp_path / "doc.md"
    doc.write_text(DOC, encoding="utf-8")
    done = _cli("assist", str(doc), "-m", model, "--task", "grammar", "--out", str(tmp_path / "out.md"), "-q")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.md").read_text(encoding="utf-8") == EDITED and doc.read_text(encoding="utf-8") == DOC
    done = _cli("assist", str(doc), "-m", model, "--task", "grammar", "--in-place", "-q")
    assert done.returncode == 0, done.stderr
    assert doc.read_text(encoding="utf-8") == EDITED and (tmp_path / "doc.md.bak").read_text(encoding="utf-8") == DOC
    done = _cli("assist", "-", "-m", model, "--task", "grammar", "-q", stdin="She go to school. Fine enough.\n")
    assert done.returncode == 0 and done.stdout == "Fine. Fine.\n", (done.stdout, done.stderr)


def test_assist_json_gives_each_edit_with_its_place_in_the_document(stopping_model: dict, tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(DOC, encoding="utf-8")
    done = _cli("assist", str(doc), "-m", str(stopping_model["gguf"]), "--task", "grammar", "--format", "json", "-q")
    assert done.returncode == 0, done.stderr
    edits = [json.loads(line) for line in done.stdout.splitlines()]  # one JSON object per edit
    originals = {e["original"] for e in edits}
    assert "She go to school" in originals and not any("x = 1" in o or "title" in o for o in originals)
    lines = DOC.split("\n")
    for e in edits:  # each edit's line and column (1-based) hold its original text in the document as written
        col = e["column"] - 1
        assert lines[e["line"] - 1][col : col + len(e["original"])] == e["original"], e
    assert sorted((e["line"], e["column"]) for e in edits)[0] == (4, 3)  # the heading's text, after '# '


@pytest.mark.parametrize("runtime", ["gguf", "onnx"])
def test_serve_edit_spans_hold_their_text_with_emoji(stopping_model: dict, runtime: str) -> None:
    from edgewrite.edit.spans import Suggestion, apply_suggestions
    from tests.integration.test_assist_serve_export import _post, _Server

    srv = _Server(stopping_model[runtime])
    try:
        text = "😀 She go home. Ünïcödé here too."
        status, body = _post(srv.url + "/v1/edit", json.dumps({"text": text, "task": "grammar"}).encode())
    finally:
        srv.close()
    assert status == 200, body
    assert body["output"] == "Fine."  # /v1/edit edits the text as one unit, as the page sends it
    got = [(e["start"], e["end"], e["original"], e["replacement"]) for e in body["edits"]]
    # spans in code points (the emoji is one), the kept full stop outside every edit
    assert got == [(0, 6, "😀 She ", ""), (6, 13, "go home", "Fine"), (13, 31, ". Ünïcödé here too", "")], got
    assert [text[e["start"] : e["end"]] for e in body["edits"]] == [e["original"] for e in body["edits"]]
    applied, dropped = apply_suggestions(text, [Suggestion(**e) for e in body["edits"]])
    assert applied == body["output"] and dropped == []


SOURCES = (
    "data.sources=[{path: grammar/train.jsonl, role: train}, {path: grammar/dev.jsonl, role: dev}, "
    "{path: paraphrase/train.jsonl, role: train}, {path: paraphrase/dev.jsonl, role: dev}]"
)


def test_edgewrite_data_writes_a_split_set_and_its_manifest(tiny_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    args = [
        "data",
        "--out",
        str(out),
        "--data-dir",
        str(tiny_data_dir),
        "--set",
        SOURCES,
        "--tasks",
        "grammar,paraphrase",
    ]
    done = _cli(*args)
    assert done.returncode == 0, done.stderr
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    dev = [json.loads(line) for line in (out / "dev.jsonl").read_text().splitlines()]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {r["task"] for r in train} == {"grammar", "paraphrase"} == {r["task"] for r in dev}
    assert manifest["kind"] == "data" and manifest["counts"]["grammar"]["train"] == sum(
        r["task"] == "grammar" for r in train
    )
    assert not {r["source"] for r in train} & {r["source"] for r in dev}
    assert all(r["instruction"] and r["references"] for r in train)
    again = _cli(*args, "--set", "data.general=5")
    assert again.returncode == 2 and "--force" in again.stderr, again.stderr  # another build over it: one line


class _Lsp:
    """`edgewrite lsp` as an editor runs it: JSON-RPC with Content-Length frames over the process's stdio."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgewrite.cli", "lsp", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.next_id = 0

    def send(self, method: str, params: dict, request: bool = False) -> int | None:
        msg: dict = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            msg["id"] = self.next_id
        body = json.dumps(msg).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return msg.get("id")

    def read(self) -> dict:
        length = 0
        while (line := self.proc.stdout.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.proc.stdout.read(length))

    def wait(self, want) -> dict:  # noqa: ANN001
        for _ in range(200):
            msg = self.read()
            if want(msg):
                return msg
        raise AssertionError("no such message from the server")

    def open(self, uri: str, text: str) -> list[dict]:
        """Initialize, open ``text`` as a Markdown document, and return its first diagnostics."""
        self.send("initialize", {"processId": None, "rootUri": None, "capabilities": {}}, request=True)
        self.wait(lambda m: m.get("id") == 1)
        self.send("initialized", {})
        item = {"uri": uri, "languageId": "markdown", "version": 1, "text": text}
        self.send("textDocument/didOpen", {"textDocument": item})
        return self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")["params"]["diagnostics"]

    def close(self) -> None:
        self.send("shutdown", {}, request=True)
        self.send("exit", {})
        self.proc.wait(timeout=30)


def _utf16_cut(line: str, character: int) -> tuple[str, str]:
    units = line.encode("utf-16-le")
    return units[: 2 * character].decode("utf-16-le"), units[2 * character :].decode("utf-16-le")


def _apply_edits(text: str, edits: list[dict]) -> str:
    """TextEdits applied as an editor does: ranges in lines and UTF-16 columns."""
    lines = text.split("\n")
    for e in sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]), reverse=True):
        s, t = e["range"]["start"], e["range"]["end"]
        before = "\n".join(lines[: s["line"]] + [_utf16_cut(lines[s["line"]], s["character"])[0]])
        after = "\n".join([_utf16_cut(lines[t["line"]], t["character"])[1]] + lines[t["line"] + 1 :])
        lines = (before + e["newText"] + after).split("\n")
    return "\n".join(lines)


def _lsp_round_trip(model: str, text: str) -> tuple[list[dict], str]:
    """Open ``text``, take the diagnostics, check that the quick fix of the first one is its own edit, and
    apply every diagnostic's fix: the diagnostics and the text an editor would then hold."""
    uri = "file:///tmp/edgewrite-user-paths/notes.md"
    lsp = _Lsp("--model", model, "--task", "grammar", "--debounce", "0.05")
    try:
        diags = lsp.open(uri, text)
        rid = lsp.send(
            "textDocument/codeAction",
            {"textDocument": {"uri": uri}, "range": diags[0]["range"], "context": {"diagnostics": diags[:1]}},
            request=True,
        )
        actions = lsp.wait(lambda m: m.get("id") == rid)["result"]
    finally:
        lsp.close()
    quick = [a for a in actions if "apply all" not in a["title"]]
    assert quick and quick[0]["edit"]["changes"][uri] == [
        {"range": diags[0]["range"], "newText": diags[0]["data"]["replacement"]}
    ], actions
    edits = [{"range": d["range"], "newText": d["data"]["replacement"]} for d in diags]
    return diags, _apply_edits(text, edits)


def test_lsp_with_a_model_that_edits_places_each_fix_with_emoji_and_crlf(stopping_model: dict) -> None:
    """Diagnostics from the model's own edits, positions in UTF-16 columns past an emoji, CRLF line ends
    kept; applying the fixes gives exactly the document the model's answers make, and the code fence stays."""
    text = "# 😀 Notes\r\n\r\n😀 She go home.\r\n\r\n```\r\ncode go here.\r\n```\r\n"
    diags, fixed = _lsp_round_trip(str(stopping_model["gguf"]), text)
    assert diags and all(d["source"] == "edgewrite" for d in diags)
    assert {d["range"]["start"]["line"] for d in diags} <= {0, 2}  # never inside the code fence (lines 4-6)
    assert fixed == "# Fine\r\n\r\nFine.\r\n\r\n```\r\ncode go here.\r\n```\r\n", repr(fixed)


def test_lsp_with_the_default_model_on_emoji_and_crlf() -> None:
    """The model a user gets with no flag (the shipped writing model, served as its 4-bit export): each
    diagnostic's range holds the text it names, past an emoji and across CRLF lines, and applying every fix
    changes only those spans."""
    uri = "file:///tmp/edgewrite-user-paths/notes.md"
    text = "# Notes\r\n\r\n😀 She go to school every days.\r\n\r\nThe cats is hungry.\r\n"
    lsp = _Lsp("--task", "grammar", "--debounce", "0.05")
    try:
        diags = lsp.open(uri, text)
    finally:
        lsp.close()
    assert diags, "the shipped model finds nothing to fix in 'She go to school every days.'"
    lines = text.split("\n")
    for d in diags:
        s, t = d["range"]["start"], d["range"]["end"]
        assert s["line"] == t["line"] and s["line"] in (0, 2, 4), d  # the heading, the two sentences
        held = _utf16_cut(_utf16_cut(lines[s["line"]], t["character"])[0], s["character"])[1]
        assert held == d["data"]["original"], (held, d)  # the range holds the text the diagnostic names
    fixed = _apply_edits(text, [{"range": d["range"], "newText": d["data"]["replacement"]} for d in diags])
    assert fixed.count("\r\n") == text.count("\r\n") and "😀 " in fixed and fixed.startswith("# Notes")
    assert "She goes to school" in fixed or "She go to school" not in fixed, fixed


def test_assist_with_the_default_model_puts_each_sentence_s_fix_on_its_own_line(tmp_path: Path) -> None:
    """The model a user gets with no flag, on a document whose sentences need different fixes: each fix
    lands on its own sentence's line (answers swapped between units, or written into the fence or the front
    matter, fail), and everything that is not prose is byte for byte the input."""
    doc = tmp_path / "notes.md"
    text = (
        "---\ntitle: go\n---\n\nShe go to school every days.\n\n- The cats is hungry.\n\n"
        "```\nShe go to school every days.\n```\n"
    )
    doc.write_text(text, encoding="utf-8")
    done = _cli("assist", str(doc), "--task", "grammar", "--out", str(tmp_path / "out.md"), "-q")
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "out.md").read_text(encoding="utf-8").split("\n")
    before = text.split("\n")
    assert len(lines) == len(before) and lines[:4] == before[:4] and lines[7:] == before[7:]  # front matter, fence
    assert "She goes to school" in lines[4] and "cats" not in lines[4], lines
    assert lines[6].startswith("- ") and "cats are hungry" in lines[6] and "school" not in lines[6], lines


def test_a_gptq_export_goes_through_assist_serve_eval_and_bench(
    stopping_model: dict, tiny_base: Path, tmp_path: Path
) -> None:
    """GPT-QModel's export of the same model (8-bit, calibrated on its own training rows): assist places
    every edit exactly as llama.cpp's and onnxruntime-genai's exports do, serve answers /v1/edit, eval scores
    every dev row from the GPTQ runtime's own answers, and bench measures it beside the GGUF export with the
    same answers."""
    from edgewrite.quantize import quantize
    from tests.integration.test_assist_serve_export import _post, _Server

    merged = stopping_model["hf"]
    gptq, _ = quantize(str(merged), "gptq", 8, out=tmp_path / "gptq", calibration=merged.parent / "data", samples=16)
    doc = tmp_path / "doc.md"
    doc.write_text(DOC, encoding="utf-8")
    done = _cli("assist", str(doc), "-m", str(gptq), "--task", "grammar", "--out", str(tmp_path / "out.md"), "-q")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.md").read_text(encoding="utf-8") == EDITED
    srv = _Server(gptq)
    try:
        status, body = _post(srv.url + "/v1/edit", json.dumps({"text": "She go home.", "task": "grammar"}).encode())
    finally:
        srv.close()
    assert status == 200 and body["output"] == "Fine.", body

    data = tmp_path / "data"
    rows = [
        {"task": "paraphrase", "source": f"The meeting {i} was postponed.", "references": [f"Meeting {i} moved."]}
        for i in range(3)
    ]
    for name in ("stsb", "mrpc"):
        (data / name).mkdir(parents=True)
        (data / name / "dev.jsonl").write_text(
            "".join(json.dumps({**r, "id": f"{name}{i}"}) + "\n" for i, r in enumerate(rows))
        )
    done = _cli("eval", str(gptq), "--tasks", "paraphrase", "--data-dir", str(data), "--out", str(tmp_path / "eval"))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "eval" / "eval.json").read_text())
    outputs = [json.loads(x) for x in (tmp_path / "eval" / "rows.jsonl").read_text().splitlines()]
    assert result["artifact"] == str(gptq) and result["rows"] == len(outputs) == 6, result
    assert {r["output"] for r in outputs} == {"Fine."} and {r["finish"] for r in outputs} == {"stop"}
    args = [str(gptq), str(stopping_model["gguf"]), "--tasks", "paraphrase", "--data-dir", str(data)]
    args += ["--base", str(tiny_base)]
    done = _cli("bench", *args, "--out", str(tmp_path / "bench"), "--threads", "2", "--latency-rows", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    cells = {c.get("format"): c for c in json.loads((tmp_path / "bench" / "bench.json").read_text())["cells"]}
    assert cells["gptq"]["stopped_fraction"] == cells["gguf"]["stopped_fraction"] == 1.0, cells["gptq"]
    assert cells["gptq"]["quality"]["sets"] == cells["gguf"]["quality"]["sets"], cells["gptq"]["quality"]
    assert cells["gptq"]["edit_latency_ms"]["p50"] > 0
