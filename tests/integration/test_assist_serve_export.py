"""assist, serve and the Ollama export on the tiny model (real HTTP on loopback)."""

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edgewrite.artifacts import write_manifest
from edgewrite.assist import assist_document, segment
from edgewrite.errors import EdgewriteError
from edgewrite.runtimes import load_runtime

DOC = "# Notes\n\nShe go to school. He dont like it.\n\n- a item here\n\n```\ncode stays.\n```\n"


@pytest.fixture(scope="module")
def tiny_artifact(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("assist") / "tiny"
    shutil.copytree(tiny_model_dir, out)
    write_manifest(out, "base", fingerprint="tiny", format="safetensors", stop_token="<|im_end|>")
    return out


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgewrite.cli", *args], capture_output=True, text=True, input=stdin)


def test_assist_keeps_structure(tiny_artifact: Path) -> None:
    runtime, _ = load_runtime(tiny_artifact)
    result, pieces, edited = assist_document(runtime, DOC, "grammar")
    fixed_before = [p.text for p in pieces if not p.editable]
    fixed_after = [t for p, t in zip(pieces, edited, strict=True) if not p.editable]
    assert fixed_before == fixed_after
    assert "```\ncode stays.\n```\n" in result and result.startswith("# ") and "\n\n- " in result


def test_assist_cli_in_place_and_bad_input(tiny_artifact: Path, tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    done = _cli("assist", str(doc), "--task", "grammar", "-m", str(tiny_artifact), "--in-place", "-q")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "doc.md.bak").read_text() == DOC and "code stays." in doc.read_text()
    out = _cli("assist", "-", "-m", str(tiny_artifact), "-q", stdin="She go to school.\n")
    assert out.returncode == 0 and out.stdout.endswith("\n")
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01\x02abc")
    cases = [
        (["assist", str(tmp_path / "empty.txt")], "empty"),
        (["assist", str(tmp_path / "bin.dat")], "binary"),
        (["assist", str(tmp_path / "missing.txt")], "does not exist"),
        (["assist", str(doc), "--task", "poetry"], "unknown task 'poetry'"),
        (["assist", str(doc), "-m", str(tmp_path)], "no manifest.json"),
    ]
    for args, message in cases:
        done = _cli(*args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_artifact: Path):
    import uvicorn

    from edgewrite.serve import create_app

    runtime, manifest = load_runtime(tiny_artifact)
    port = _free_port()
    app = create_app(runtime, manifest, "tiny", max_body_bytes=4096)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_openai_client_chat_streaming_and_not(server: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=server + "/v1", api_key="local")
    resp = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Fix: she go."}], max_tokens=5
    )
    assert resp.choices[0].message.role == "assistant" and resp.usage.completion_tokens <= 5
    chunks = list(
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=5, stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"


def test_edit_health_page_and_bad_requests(server: str) -> None:
    status, body = _post(server + "/v1/edit", json.dumps({"text": "She go to school.", "task": "grammar"}).encode())
    assert status == 200 and body["task"] == "grammar" and isinstance(body["diff"], list)
    with urllib.request.urlopen(server + "/health") as resp:
        assert json.loads(resp.read())["status"] == "ok"
    with urllib.request.urlopen(server + "/") as resp:
        assert b"Suggest edits" in resp.read()
    assert _post(server + "/v1/edit", b"{not json")[0] == 400
    status, body = _post(server + "/v1/edit", json.dumps({"text": "x", "task": "poetry"}).encode())
    assert status == 400 and "poetry" in body["error"]["message"]
    assert _post(server + "/v1/chat/completions", json.dumps({"messages": []}).encode())[0] == 400
    assert _post(server + "/v1/edit", json.dumps({"text": "a" * 10_000}).encode())[0] == 413


def test_concurrent_requests_are_all_answered(server: str) -> None:
    results: list[int] = []

    def one() -> None:
        results.append(_post(server + "/v1/edit", json.dumps({"text": "He go.", "task": "grammar"}).encode())[0])

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [200] * 8


def test_port_in_use_is_a_clear_error() -> None:
    from edgewrite.serve import check_port

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(EdgewriteError, match="pick another --port"):
            check_port("127.0.0.1", s.getsockname()[1])


def test_ollama_modelfile_matches_the_chat_template(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from edgewrite.export import CHATML, ollama_modelfile
    from edgewrite.quantize import quantize

    art, _ = quantize(str(tiny_model_dir), "gguf", 8, out=tmp_path / "gguf")
    path = ollama_modelfile(art, tmp_path / "ollama")
    text = path.read_text()
    assert 'PARAMETER stop "<|im_end|>"' in text and (tmp_path / "ollama" / text.split("FROM ")[1].split()[0]).is_file()
    template = text.split('TEMPLATE """')[1].split('"""')[0]
    system = text.split('SYSTEM """')[1].split('"""')[0]
    assert template == CHATML
    # Render the Go template for one system + user turn by hand and compare with the Jinja template.
    rendered = (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        + "<|im_start|>user\nHello there<|im_end|>\n"
        + "<|im_start|>assistant\n"
    )
    tok = AutoTokenizer.from_pretrained(art)
    assert rendered == tok.apply_chat_template(
        [{"role": "user", "content": "Hello there"}], tokenize=False, add_generation_prompt=True
    )
    with pytest.raises(EdgewriteError, match="not a GGUF artifact"):
        ollama_modelfile(_non_gguf(tmp_path), tmp_path / "x")


def _non_gguf(tmp_path: Path) -> Path:
    d = tmp_path / "not-gguf"
    d.mkdir()
    write_manifest(d, "merged", fingerprint="m", format="safetensors")
    return d


def test_segment_covers_documents_without_structure() -> None:
    assert [p.text for p in segment("Just one line", "sentence")] == ["Just one line"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_editor_page_in_headless_chromium(server: str) -> None:
    """Type text, pick a task, click, see a diff with accept/reject controls, apply it."""
    if _chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does this)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server + "/")
        page.fill("#text", "She go to school every days.")
        page.select_option("#task", "fluency")
        page.click("#suggest")
        page.wait_for_function(
            "document.querySelector('#status').textContent.length > 0 && "
            "!document.querySelector('#status').textContent.startsWith('editing')"
        )
        status = page.text_content("#status")
        assert "suggested change" in status or status == "no changes suggested", status
        hunks = page.locator(".hunk").count()
        assert (hunks > 0) == ("suggested change" in status)
        if hunks:  # reject the first change, accept the rest, and take the result into the text box
            page.locator(".hunk button[title=reject]").first.click()
            assert "rejected" in page.locator(".hunk").first.get_attribute("class")
            page.click("#apply")
            assert page.text_content("#status") == "applied" and page.input_value("#text").strip()
        browser.close()
        assert errors == []
