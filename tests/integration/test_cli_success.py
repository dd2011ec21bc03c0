"""Every command's success path once, through the console entry point, on the tiny model: what a user
types, what it prints, what it writes."""

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import write_jsonl

CLI = [sys.executable, "-m", "edgewrite.cli"]


def _cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Paraphrase dev sets in the layout of shared/data (small, so eval and bench stay quick)."""
    root = tmp_path_factory.mktemp("cli-data")
    rows = [
        {"task": "paraphrase", "source": f"The meeting {i} was postponed.", "references": [f"Meeting {i} moved."]}
        for i in range(3)
    ]
    write_jsonl(root / "stsb" / "dev.jsonl", [{**r, "id": f"s{i}"} for i, r in enumerate(rows)])
    write_jsonl(root / "mrpc" / "dev.jsonl", [{**r, "id": f"m{i}"} for i, r in enumerate(rows)])
    return root


def test_models_lists_the_embedded_and_the_shipped_model() -> None:
    done = _cli("models")
    assert done.returncode == 0 and "default" in done.stdout and "SmolLM2-135M-Instruct" in done.stdout


def test_generate_prints_the_edit_and_its_timing(stopping_model: dict) -> None:
    done = _cli("generate", "He go home.", "-m", str(stopping_model["gguf"]), "--task", "grammar")
    assert done.returncode == 0 and done.stdout.strip() == "Fine." and "stop: stop" in done.stderr


def test_quantize_with_an_explicit_type(tiny_model_dir: Path, tmp_path: Path) -> None:
    done = _cli("quantize", str(tiny_model_dir), "--type", "Q4_0", "--out", str(tmp_path / "q4_0"))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "q4_0" / "manifest.json").read_text())
    assert manifest["details"]["type"] == "Q4_0" and "gguf artifact written" in done.stdout


@pytest.mark.parametrize("runtime", ["gguf", "onnx"])
def test_eval_writes_eval_json_and_every_row(
    stopping_model: dict, data_dir: Path, tmp_path: Path, runtime: str
) -> None:
    out = tmp_path / "eval"
    done = _cli(
        "eval", str(stopping_model[runtime]), "--tasks", "paraphrase", "--data-dir", str(data_dir), "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "eval.json").read_text())
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert result["rows"] == len(rows) == 6 and {r["output"] for r in rows} == {"Fine."}
    assert {r["finish"] for r in rows} == {"stop"} and result["headline_source"]["paraphrase"] == "stsb sari"
    lo, hi = result["headline_ci"]["paraphrase"]["lo"], result["headline_ci"]["paraphrase"]["hi"]
    assert lo <= result["headline"]["paraphrase"] <= hi and "paraphrase:" in done.stdout


def test_bench_then_report_with_budget_flags(
    stopping_model: dict, tiny_base: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    args = [str(stopping_model["gguf"]), "--tasks", "paraphrase", "--data-dir", str(data_dir), "--out", str(out)]
    done = _cli("bench", *args, "--base", str(tiny_base), "--threads", "2", "--latency-rows", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((out / "bench.json").read_text())
    labels = [c["label"] for c in doc["cells"]]
    assert labels[0].startswith("copy") and "harper (rule-based)" in labels and len(labels) == 4
    base = next(c for c in doc["cells"] if c["label"] == "base fp32 (untuned)")
    assert base["path"] == str(tiny_base)  # --base: the untuned row is the model the artifacts were tuned from
    gguf = next(c for c in doc["cells"] if c.get("format") == "gguf")
    assert gguf["stopped_fraction"] == 1.0 and gguf["edit_latency_ms"]["p50"] > 0
    done = _cli("report", str(out), "--max-latency-ms", "100000", "--max-memory-mb", "100000")
    assert done.returncode == 0, done.stderr
    md = (out / "report.md").read_text()
    assert "Budget: edit p50 ≤ 100000 ms, peak RSS ≤ 100000 MB." in md and "Ship **tuned gguf Q8_0**" in md
    done = _cli("report", str(out), "--max-latency-ms", "0.001")
    assert done.returncode == 0 and "fits the budget" in done.stdout
    # the ONNX export of the same model benched beside it (the GGUF cells kept): the same answers
    again = [*args[:1], str(stopping_model["onnx"]), *args[1:], "--base", str(tiny_base)]
    done = _cli("bench", *again, "--threads", "2", "--latency-rows", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((out / "bench.json").read_text())
    onnx = next(c for c in doc["cells"] if c.get("format") == "onnx")
    assert onnx["stopped_fraction"] == 1.0 and onnx["quality"]["headline"] == gguf["quality"]["headline"]


def test_serve_answers_and_stops_on_sigint(stopping_model: dict) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*CLI, "serve", "-m", str(stopping_model["gguf"]), "--port", str(port)], stderr=subprocess.PIPE, text=True
    )
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                    break
            except OSError:
                time.sleep(0.1)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/edit",
            json.dumps({"text": "He go home.", "task": "grammar"}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            assert json.loads(r.read())["output"] == "Fine."
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert "serving" in proc.stderr.read()


def test_serve_off_loopback_takes_its_key_from_the_environment(stopping_model: dict) -> None:
    import os
    import socket
    import urllib.error

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "EDGEWRITE_API_KEY": "from-env"}
    proc = subprocess.Popen(
        [*CLI, "serve", "-m", str(stopping_model["gguf"]), "--host", "0.0.0.0", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def models(key: str | None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers=headers), timeout=10
            ) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        assert models("from-env") == 200  # off loopback it started: the key came from the environment
        assert models(None) == 401 and models("wrong") == 401
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_export_ollama_writes_a_modelfile(stopping_model: dict, tmp_path: Path) -> None:
    done = _cli("export", "ollama", str(stopping_model["gguf"]), "--out", str(tmp_path / "ollama"))
    text = (tmp_path / "ollama" / "Modelfile").read_text()
    assert done.returncode == 0 and 'PARAMETER stop "<|im_end|>"' in text and text.startswith("# Made by edgewrite")


def test_run_resumes_an_interrupted_tune(tiny_recipe: Path) -> None:
    from edgewrite.recipe import load_recipe

    overrides = ["--set", "train.max_steps=10", "--set", "train.save_steps=2"]
    proc = subprocess.Popen([*CLI, "run", str(tiny_recipe), *overrides, "-q"], stdout=subprocess.PIPE, text=True)
    recipe = load_recipe(tiny_recipe, ["train.max_steps=10", "train.save_steps=2"])
    ckpt = recipe.run_dir() / "adapter.partial" / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    deadline = time.time() + 300
    while not ckpt.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.is_file() and not (recipe.run_dir() / "merged").exists()
    done = _cli("run", str(tiny_recipe), *overrides)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[tune] resuming from" in done.stdout and "done" in done.stdout
    merged = json.loads((recipe.run_dir() / "merged" / "manifest.json").read_text())
    assert merged["kind"] == "merged"
