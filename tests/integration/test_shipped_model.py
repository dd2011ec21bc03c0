"""The tuned `writing` model that ships inside the package: it loads with no training run, checks its
own integrity, merges into the embedded base, and corrects a sentence."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgewrite.artifacts import read_manifest
from edgewrite.errors import EdgewriteError
from edgewrite.models import SHIPPED_DIR, WRITING, shipped_adapter
from edgewrite.shipped import merged_writing


def test_the_shipped_adapter_is_small_complete_and_measured() -> None:
    folder = shipped_adapter()
    manifest = read_manifest(folder)
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert manifest["kind"] == "adapter" and manifest["dtype"] == "float16" and size <= 40e6
    assert manifest["base_model"]["ref"] == "default" and manifest["recipe"]["path"].startswith("recipes/")
    for which in ("merged", "served"):
        ci = manifest["dev"][which]["mean_ci"]
        assert ci["lo"] <= ci["value"] <= ci["hi"] and len(manifest["dev"][which]["headline_ci"]) == 7
    assert manifest["serve"]["format"] in ("gguf", "onnx") and manifest["serve"]["bits"] == 4
    from edgewrite.models import list_models

    (row,) = [r for r in list_models() if r["ref"] == WRITING]  # `edgewrite models` says how it is served
    served = manifest["dev"]["served"]["mean_ci"]["value"]
    assert f"served as {manifest['serve'].get('type', 'onnx')}, dev mean {served:.1f}" in row["what"]
    if name := manifest["serve"].get("imatrix"):  # the importance matrix the served export was rounded with
        from edgewrite.quantize.imatrix import load

        assert name in manifest["files"] and len(load(folder / name)) == 7 * 30  # 7 matrices in each of 30 blocks
    if name := manifest["serve"].get("rounding"):  # the tuned rounding the served export was rounded with
        from edgewrite.quantize.rounding import read_meta

        meta = read_meta(folder / name)
        assert name in manifest["files"] and meta["type"] == manifest["serve"]["type"] == "Q4_0"
        assert sum(1 for e in meta["tensors"] if e.get("kept")) == 7 * 30 + 1  # and the Q8_0 token embedding
        # made for the merge a user gets: the shipped adapter folded into the embedded model
        assert meta["model_fingerprint"] == read_manifest(merged_writing())["fingerprint"]


def test_writing_resolves_by_merging_into_the_embedded_model_and_corrects() -> None:
    from edgewrite.edit import load_editor

    path = merged_writing()
    merged = read_manifest(path)
    assert merged["kind"] == "merged" and merged["parent"]["path"] == str(SHIPPED_DIR / WRITING)
    editor, _ = load_editor(path, batch_size=1)
    (edit,) = editor.edit("grammar", ["She go to school every days."])
    # Both errors: the agreement ("goes") and the number ("every day").
    assert edit.output == "She goes to school every day.", edit.output


def test_a_damaged_or_missing_shipped_model_says_reinstall(tmp_path: Path, monkeypatch) -> None:
    from edgewrite import models

    shutil.copytree(SHIPPED_DIR / WRITING, tmp_path / WRITING)
    monkeypatch.setattr(models, "SHIPPED_DIR", tmp_path)
    weights = tmp_path / WRITING / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(EdgewriteError, match="damaged .*reinstall edgewrite"):
        merged_writing()
    shutil.rmtree(tmp_path / WRITING)
    with pytest.raises(EdgewriteError, match="missing from this installation.*reinstall edgewrite"):
        models.shipped_adapter()


def test_assist_corrects_with_no_training_run(tmp_path: Path) -> None:
    """The README's promise from a fresh install: the shipped model, exported once to its serving format."""
    import os

    # The session's home minus any recommendation a report test left there (assist would follow it):
    # the cached embedded model is linked, not converted again.
    home = tmp_path / "home"
    home.mkdir()
    for entry in Path(os.environ["EDGEWRITE_HOME"]).iterdir():
        if entry.name != "recommended.json":
            (home / entry.name).symlink_to(entry)
    env = {**os.environ, "EDGEWRITE_HOME": str(home)}

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "edgewrite.cli", *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)

    done = cli("assist", "-", "--task", "grammar", "-q", stdin="She go to school every days.\n")
    assert done.returncode == 0, done.stderr[-2000:]
    # the serving export (4 bits, rounded as shipped) fixes both errors, as the fp32 merge does
    assert done.stdout.strip() == "She goes to school every day.", done.stdout
    serve = read_manifest(shipped_adapter())["serve"]
    assert "shipped 'writing' model" in done.stderr and serve["type"] in done.stderr
    if serve.get("rounding"):
        assert "rounded as AutoRound tuned it" in done.stderr
        (made,) = (home / "models").glob("writing-*-gguf-q4_0-ar")
        # the user's export is the file that was benched, tensor for tensor
        assert read_manifest(made)["details"]["rounding_file"]["tensors_differing"] == []
    # `edgewrite check` with the same default: one suggestion per edit, on its own span, with its kind
    (tmp_path / "she.txt").write_text("She go to school every days.\n")
    (tmp_path / "notes.md").write_text(
        "---\ntitle: she go home\n---\n\n```\nshe go to school every days\n```\n\nShe go to school every days.\n"
    )
    checked = cli("check", "she.txt", "notes.md", "-q")
    # `-m writing` is the model as served (the export above), `writing:fp32` its merge: `models` shows both
    rows = {line.split("\t")[0]: line.split("\t") for line in cli("models").stdout.splitlines()}
    served, fp32 = Path(rows["writing"][3]), Path(rows["writing:fp32"][3])
    assert read_manifest(served)["format"] == serve["format"] and read_manifest(fp32)["kind"] == "merged"
    assert rows["writing"][4] == "*" and "MB" in rows["writing"][1] and "MB" in rows["writing:fp32"][1]
    pick = "from edgewrite.shipped import artifact_path as a; print(a('writing')); print(a('writing:fp32'))"
    resolved = subprocess.run(
        [sys.executable, "-c", pick], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert resolved.stdout.split() == [str(served), str(fp32)], resolved.stderr[-2000:]
    assert checked.returncode == 1, checked.stderr[-2000:]
    # every edit carries the model's confidence in it (its digits depend on the CPU's kernels)
    lines = checked.stdout.splitlines()
    assert all(re.search(r"; confidence (0\.\d\d|1\.00)\)$", line) for line in lines), lines
    assert [re.sub(r"; confidence [\d.]+\)$", ")", line) for line in lines] == [
        "she.txt:1:5: verb form: go → goes (agreement: 'go' → 'goes' after 'She')",
        "she.txt:1:24: noun number: days → day (noun number: 'days' → 'day' after 'every')",
        "notes.md:9:5: verb form: go → goes (agreement: 'go' → 'goes' after 'She')",  # not the front matter or code
        "notes.md:9:24: noun number: days → day (noun number: 'days' → 'day' after 'every')",
    ], lines


def test_runtime_lora_keeps_the_embedded_q4_1_file_and_computes_the_fp32_merge(tmp_path: Path) -> None:
    """`quantize writing --runtime-lora`: the embedded base's own Q4_1 file, byte for byte (the weights the
    adapter was trained on), plus the adapter as a llama.cpp LoRA applied at run time. llama.cpp then
    computes what the fp32 merge computes, which it does not without the adapter."""
    import numpy as np

    from edgewrite.artifacts import sha256_file
    from edgewrite.edit import load_editor
    from edgewrite.models import default_gguf_path
    from edgewrite.quantize import quantize
    from edgewrite.runtimes import load_runtime
    from edgewrite.runtimes.hf import HFRuntime
    from edgewrite.runtimes.llamacpp import LlamaCppRuntime
    from edgewrite.tasks import TASKS, build_prompt

    path, manifest = quantize(str(merged_writing()), "gguf", 4, out=tmp_path / "lora", runtime_lora=True)
    details = manifest["details"]
    assert manifest["bits"] == 4 and manifest["settings"] == {"type": "Q4_1", "runtime_lora": True}
    assert manifest["parent"]["kind"] == "adapter" and manifest["prompt_style"] == "chat-nosystem"
    assert manifest["files"][details["gguf_file"]]["sha256"] == sha256_file(default_gguf_path())
    assert details["lora_tensors"] == 2 * 7 * 30  # A and B of 7 projections in each of 30 blocks

    def cos(a, b) -> float:
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    hf = HFRuntime(merged_writing(), batch_size=1)
    tuned, _ = load_runtime(path, threads=2)
    bare = LlamaCppRuntime(path, details["gguf_file"], manifest["stop_token"], threads=2)
    for text in ("She go to school every days.", "Me and him was late to the meeting yesterday."):
        prompt = build_prompt(hf.tokenizer, TASKS["grammar"].instructions[0], text, "chat-nosystem")
        ids = hf.tokenize(prompt)
        want, got, without = hf.next_token_logits(ids), tuned.next_token_logits(ids), bare.next_token_logits(ids)
        assert cos(want, got) > 0.999 and cos(want, got) > cos(want, without), (cos(want, got), cos(want, without))
    tuned.close()
    bare.close()
    editor, _ = load_editor(path, batch_size=1)
    (edit,) = editor.edit("grammar", ["She go to school every days."])
    assert edit.output == "She goes to school every day.", edit.output
    from edgewrite.export import ollama_modelfile

    lines = ollama_modelfile(path, tmp_path / "ollama").read_text().splitlines()
    (adapter,) = [line.split(" ", 1)[1] for line in lines if line.startswith("ADAPTER ")]
    assert (tmp_path / "ollama" / adapter).resolve() == (path / details["lora_file"]).resolve()
