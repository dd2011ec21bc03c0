"""A task that is not one of the seven, declared in a recipe with its data in the same layout, goes
through every command: data, tune and merge (`edgewrite run`), eval, bench, assist, check, and the
served /v1/edit task list; its declaration travels in every artifact's manifest."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_jsonl

CLI = [sys.executable, "-m", "edgewrite.cli"]
PAIRS = [
    ("gonna need the report by friday", "I will need the report by Friday."),
    ("can u send me the file", "Could you send me the file?"),
    ("thx for the help yesterday", "Thank you for your help yesterday."),
    ("we gotta fix this asap", "We have to fix this as soon as possible."),
    ("lemme know if it works", "Please let me know if it works."),
    ("the meeting's kinda long", "The meeting is rather long."),
]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=900)


@pytest.fixture()
def formal_recipe(tmp_path: Path, tiny_model_dir: Path) -> Path:
    data = tmp_path / "data"
    rows = [{"task": "formalize", "source": s, "references": [r], "id": f"f-{i}"} for i, (s, r) in enumerate(PAIRS)]
    write_jsonl(data / "formalize" / "train.jsonl", rows[:4] * 3)
    write_jsonl(data / "formalize" / "dev.jsonl", rows[4:])
    recipe = {
        "name": "formal",
        "model": str(tiny_model_dir),
        "out_dir": str(tmp_path / "runs"),
        "data": {
            "data_dir": str(data),
            "custom_tasks": [
                {
                    "name": "formalize",
                    "instructions": ["Make this text formal", "Rewrite this in a formal register"],
                    "unit": "sentence",
                    "metric": "sari",
                }
            ],
            "tasks": ["formalize"],
            "sources": [
                {"path": "formalize/train.jsonl", "role": "train"},
                {"path": "formalize/dev.jsonl", "role": "dev"},
            ],
            "max_unchanged_fraction": 1.0,
        },
        "train": {"max_steps": 2, "batch_size": 2, "lora_r": 4, "lora_alpha": 8, "max_length": 128, "bf16": False},
    }
    path = tmp_path / "formal.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_a_custom_task_runs_from_a_recipe_through_eval_bench_assist_and_check(
    formal_recipe: Path, tiny_base: Path, tmp_path: Path
) -> None:
    done = _cli("run", str(formal_recipe))
    assert done.returncode == 0, done.stderr
    runs = tmp_path / "runs" / "formal"
    for stage in ("data", "adapter", "merged"):
        manifest = json.loads((runs / stage / "manifest.json").read_text())
        assert [t["name"] for t in manifest["custom_tasks"]] == ["formalize"], stage
    train = [json.loads(x) for x in (runs / "data" / "train.jsonl").read_text().splitlines()]
    assert {r["task"] for r in train} == {"formalize"}
    assert {r["instruction"] for r in train} <= {"Make this text formal", "Rewrite this in a formal register"}

    merged = str(runs / "merged")
    data = str(tmp_path / "data")
    out = tmp_path / "eval"
    done = _cli("eval", merged, "--tasks", "formalize", "--data-dir", data, "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    scores = json.loads((out / "eval.json").read_text())
    assert set(scores["headline"]) == {"formalize"} and scores["rows"] == 2
    assert scores["headline_source"]["formalize"] == "formalize sari"

    bench = tmp_path / "bench"
    done = _cli(
        "bench",
        merged,
        "--tasks",
        "formalize",
        "--data-dir",
        data,
        "--out",
        str(bench),
        "--threads",
        "1",
        "--latency-rows",
        "2",
        "--base",
        str(tiny_base),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads((bench / "bench.json").read_text())
    assert all(set(c["quality"]["headline"]) == {"formalize"} for c in doc["cells"])  # copy, base, harper, tuned
    done = _cli("report", str(bench))
    assert done.returncode == 0 and "formalize" in (bench / "report.md").read_text()

    done = subprocess.run(
        [*CLI, "assist", "-m", merged, "--task", "formalize"],
        input="can u send it\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    note = tmp_path / "note.txt"
    note.write_text("can u send it\n")
    done = _cli("check", str(note), "-m", merged, "--task", "formalize", "--format", "json")
    assert done.returncode in (0, 1), done.stderr  # 1: it suggested edits, 0: none

    # an unknown task is still one line and exit 2; the built-in model does not know this one
    done = _cli("assist", "--task", "formalize")
    assert done.returncode == 2 and "unknown task 'formalize'" in done.stderr


def test_a_custom_task_that_collides_or_is_malformed_is_refused(tmp_path: Path) -> None:
    from edgewrite.errors import EdgewriteError
    from edgewrite.recipe import load_recipe

    for spec, message in (
        ({"name": "grammar", "instructions": ["x"]}, "taken by a built-in task"),
        ({"name": "Bad Name", "instructions": ["x"]}, "lower-case"),
        ({"name": "ok", "instructions": ["x"], "metric": "f0.5"}, "metric is one of"),
        ({"name": "ok2", "instructions": []}, "instruction wordings"),
    ):
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump({"name": "r", "data": {"custom_tasks": [spec]}}))
        with pytest.raises(EdgewriteError, match=message):
            load_recipe(path)
