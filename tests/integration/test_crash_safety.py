"""Crash safety with real signals and a real write failure: a tune killed after its second checkpoint
resumes onto the same loss curve; a full disk (a file-size limit) fails with one line and leaves no
complete-looking folder; a killed quantize or in-place assist leaves nothing a later run trusts."""

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgewrite.recipe import load_recipe
from edgewrite.train import tune

CLI = [sys.executable, "-m", "edgewrite.cli"]


def _losses(out: Path) -> dict[int, float]:
    log = json.loads((out / "train_log.json").read_text())["log_history"]
    return {e["step"]: e["loss"] for e in log if "loss" in e}


def test_a_tune_killed_after_its_second_checkpoint_resumes_onto_the_same_curve(tiny_recipe: Path, tmp_path: Path):
    overrides = ["--set", "train.max_steps=12", "--set", "train.save_steps=2"]
    cmd = [*CLI, "tune", "--recipe", str(tiny_recipe), *overrides, "-q"]
    recipe = load_recipe(tiny_recipe, ["train.max_steps=12", "train.save_steps=2"])
    adapter = recipe.run_dir() / "adapter"
    second = adapter.with_name("adapter.partial") / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not second.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert second.is_file() and not adapter.exists(), "killed before its second checkpoint, or it finished"
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((adapter / "manifest.json").read_text())
    assert manifest["stats"]["steps"] == 12 and manifest["stats"]["resumed_from"].startswith("checkpoint-")
    straight = tmp_path / "straight"
    tune(recipe.train, recipe.model, recipe.run_dir() / "data", straight, quiet=True)
    resumed_at = int(manifest["stats"]["resumed_from"].split("-")[1])
    a, b = _losses(straight), _losses(adapter)
    assert [s for s in b if s > resumed_at] == list(range(resumed_at + 1, 13))
    for step in range(resumed_at + 1, 13):
        assert b[step] == pytest.approx(a[step], abs=1e-4)


def _limited(max_bytes: int):  # noqa: ANN202
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


@pytest.mark.parametrize(
    "stage, args",
    [
        ("merge", ["merge", "{adapter}", "--out", "{out}"]),
        ("quantize", ["quantize", "{merged}", "-f", "gguf", "--bits", "8", "--out", "{out}"]),
        ("onnx", ["quantize", "{merged}", "-f", "onnx", "--bits", "4", "--out", "{out}"]),
        ("export", ["export", "ollama", "{gguf}", "--out", "{out}"]),
    ],
)
def test_a_full_disk_fails_with_one_line_and_the_next_run_succeeds(stage, args, tiny_recipe, tmp_path):
    from edgewrite.pipeline import run_recipe
    from edgewrite.quantize import quantize

    recipe = load_recipe(tiny_recipe)
    dirs = run_recipe(recipe, quiet=True, log=lambda *_: None)
    gguf = quantize(str(dirs["merge"]), "gguf", 8, out=tmp_path / "gguf")[0] if stage == "export" else ""
    out = tmp_path / "out"
    argv = [a.format(adapter=dirs["tune"], merged=dirs["merge"], gguf=gguf, out=out) for a in args]
    limit = 64 if stage == "export" else 1_000_000  # the tiny model's weights are ~13 MB, a Modelfile ~1 KB
    done = subprocess.run([*CLI, *argv], capture_output=True, text=True, preexec_fn=_limited(limit), timeout=600)
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-1500:]
    complete = out / ("Modelfile" if stage == "export" else "manifest.json")
    assert not complete.exists() and not out.with_name("out.partial").exists()
    again = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-1500:]
    assert complete.is_file()


def test_killed_quantize_and_in_place_assist_leave_nothing_trusted(tiny_recipe: Path, tmp_path: Path) -> None:
    from edgewrite.pipeline import run_recipe

    merged = run_recipe(load_recipe(tiny_recipe), quiet=True, log=lambda *_: None)["merge"]
    out = tmp_path / "q"
    proc = subprocess.Popen([*CLI, "quantize", str(merged), "-f", "onnx", "--bits", "4", "--out", str(out)])
    partial = out.with_name("q.partial")
    deadline = time.time() + 120
    while not partial.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    done = subprocess.run([*CLI, "quantize", str(merged), "-f", "onnx", "--bits", "4", "--out", str(out)], timeout=600)
    assert done.returncode == 0 and (out / "manifest.json").is_file() and not partial.exists()

    doc = tmp_path / "doc.md"
    original = "".join(f"Sentence number {i} go here. " for i in range(400)) + "\n"
    doc.write_text(original)
    proc = subprocess.Popen([*CLI, "assist", str(doc), "-m", str(merged), "--in-place", "-q"])
    time.sleep(8)  # loading done, editing under way
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert doc.read_text() == original  # the document is replaced only by a finished result, atomically
    assert not (tmp_path / "doc.md.bak").exists() or (tmp_path / "doc.md.bak").read_text() == original


def test_multi_process_training_through_accelerate(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`accelerate launch --num_processes 2 --cpu` runs DDP on gloo: it finishes, only rank 0 writes the
    artifact, and its losses match one process with the same global batch (4 = 2 x 2) to 1e-4. The rows
    are identical, so any split of a batch across the ranks has the same loss: what is compared is the
    distributed arithmetic (gradient all-reduce, loss averaging), not the samplers' orders."""
    import yaml

    from tests.conftest import write_jsonl

    row = {"task": "grammar", "source": "She go to school.", "references": ["Fine."], "instruction": "Fix grammar"}
    write_jsonl(tmp_path / "d" / "g" / "train.jsonl", [{**row, "id": f"r{i}"} for i in range(16)])
    recipe = {
        "name": "ddp",
        "model": str(tiny_model_dir),
        "out_dir": str(tmp_path / "runs"),
        "data": {"data_dir": str(tmp_path / "d"), "sources": [{"path": "g/train.jsonl", "role": "train"}],
                 "tasks": ["grammar"], "max_unchanged_fraction": 1.0},
        "train": {"max_steps": 4, "logging_steps": 1, "group_by_length": False, "lora_r": 4, "lora_alpha": 8,
                  "lora_dropout": 0.0, "lr": 1e-3, "max_length": 128, "bf16": False, "save_steps": 100},
    }  # fmt: skip
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(recipe))
    accelerate = Path(sys.executable).with_name("accelerate")
    ddp_out, single_out = tmp_path / "ddp", tmp_path / "single"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(accelerate), "launch", "--num_processes", "2", "--cpu", "--num_cpu_threads_per_process", "1", "-m",
         "edgewrite.cli", "tune", "--recipe", str(path), "--set", "train.batch_size=2", "--out", str(ddp_out), "-q"],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("written to") == 1  # rank 0 reports; rank 1 writes and says nothing
    manifest = json.loads((ddp_out / "manifest.json").read_text())
    assert manifest["stats"]["steps"] == 4 and not ddp_out.with_name("ddp.partial").exists()
    single = subprocess.run(
        [*CLI, "tune", "--recipe", str(path), "--set", "train.batch_size=4", "--out", str(single_out), "-q"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    a, b = _losses(single_out), _losses(ddp_out)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    for step in a:
        assert b[step] == pytest.approx(a[step], abs=1e-4), (step, a, b)


def test_the_7b_recipe_s_accelerate_config_loads() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    root = Path(__file__).resolve().parents[2] / "recipes"
    config = load_config_from_file(str(root / "writing-alpaca-7b.accelerate.yaml"))
    assert config.distributed_type.value == "FSDP" and config.num_processes == 8
    assert config.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"
    assert load_recipe(root / "writing-alpaca-7b.yaml").train.method == "full"
