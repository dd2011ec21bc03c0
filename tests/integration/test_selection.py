"""Selection on dev inside `tune`: real generation scored by the eval code, the best checkpoint kept,
early stopping, and a resume that keeps the history."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from edgewrite.data import build_dataset
from edgewrite.errors import EdgewriteError
from edgewrite.recipe import load_recipe
from edgewrite.train import DevSelection, tune
from tests.conftest import TASK_ROWS, write_jsonl


@pytest.fixture()
def shared_layout(tmp_path: Path) -> Path:
    """A data folder in the layout of shared/data for three tasks whose dev sets are official dev files."""
    root = tmp_path / "shared-data"

    def rows(task: str, split: str) -> list[dict]:
        lead = "" if split == "d" else "Today, "  # training sentences differ from the dev ones
        return [
            {"task": task, "source": lead + s, "references": [lead + r], "id": f"{task}-{split}-{i}"}
            for i, (s, r) in enumerate(TASK_ROWS[task])
        ]

    write_jsonl(root / "jfleg" / "dev.jsonl", [{**r, "references": r["references"] * 4} for r in rows("fluency", "d")])
    write_jsonl(root / "iterater" / "dev.jsonl", rows("clarity", "d"))
    write_jsonl(root / "stsb" / "dev.jsonl", rows("paraphrase", "d"))
    write_jsonl(root / "iterater" / "train.jsonl", rows("clarity", "t") + rows("fluency", "t"))
    write_jsonl(root / "stsb" / "train.jsonl", rows("paraphrase", "t"))
    return root


def _recipe(tmp_path: Path, data: Path, model: Path, **train) -> Path:
    recipe = {
        "name": "sel",
        "model": str(model),
        "out_dir": str(tmp_path / "runs"),
        "data": {
            "data_dir": str(data),
            "tasks": ["fluency", "clarity", "paraphrase"],
            "sources": [
                {"path": "iterater/train.jsonl", "role": "train"},
                {"path": "stsb/train.jsonl", "role": "train"},
            ],
            "prompt_style": "chat-nosystem",
        },
        "train": {
            "max_steps": 4,
            "batch_size": 2,
            "lora_r": 4,
            "lora_alpha": 8,
            "lr": 1e-3,
            "max_length": 128,
            "bf16": False,
            "eval_steps": 2,
            "eval_rows": 2,
            "logging_steps": 1,
            **train,
        },
    }
    path = tmp_path / "sel.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _prepare(path: Path):
    recipe = load_recipe(path)
    data_dir = recipe.run_dir() / "data"
    build_dataset(recipe.data, data_dir, seed=recipe.train.seed)
    return recipe, data_dir


def test_selection_scores_checkpoints_with_real_generation(tmp_path, shared_layout, tiny_model_dir) -> None:
    recipe, data_dir = _prepare(_recipe(tmp_path, shared_layout, tiny_model_dir))
    out = recipe.run_dir() / "adapter"
    manifest = tune(recipe.train, recipe.model, data_dir, out, quiet=True)
    log = json.loads((out / "train_log.json").read_text())
    history = log["selection"]["history"]
    assert [h["step"] for h in history] == [2, 4]
    for h in history:
        assert set(h["headline"]) == {"fluency", "clarity", "paraphrase"} and h["dev_loss"] > 0
        assert h["mean"] == pytest.approx(sum(h["headline"].values()) / 3, abs=1e-3)
    assert log["selection"]["sets"] == {"fluency/jfleg": 2, "clarity/iterater": 2, "paraphrase/stsb": 2}
    assert manifest["selection"]["best_step"] in (2, 4) and manifest["prompt_style"] == "chat-nosystem"
    assert (out / "adapter_model.safetensors").is_file() and not (out / "best").exists()
    assert not (out / "selection.json").exists() and not (out / "checkpoints").exists()


def _scripted(monkeypatch, scores: list[float], seen: dict) -> None:
    """Dev scores from a script instead of generation; the checkpoint weights at each evaluation are
    recorded, to check which one is kept."""
    calls = iter(scores)

    def evaluate(self, model, step):
        ckpt = self.folder / "checkpoints" / f"checkpoint-{step}" / "adapter_model.safetensors"
        seen[step] = load_file(ckpt)
        entry = {"step": step, "mean": next(calls), "headline": {}, "dev_loss": 1.0, "seconds": 0.0}
        self.history.append(entry)
        return entry

    monkeypatch.setattr(DevSelection, "evaluate", evaluate)


def test_a_run_whose_dev_score_peaks_early_keeps_that_checkpoint_and_stops(
    tmp_path, shared_layout, tiny_model_dir, monkeypatch
) -> None:
    recipe, data_dir = _prepare(_recipe(tmp_path, shared_layout, tiny_model_dir, max_steps=12, early_stopping=2))
    seen: dict = {}
    _scripted(monkeypatch, [30.0, 50.0, 40.0, 35.0, 60.0, 70.0], seen)
    out = recipe.run_dir() / "adapter"
    manifest = tune(recipe.train, recipe.model, data_dir, out, quiet=True)
    assert sorted(seen) == [2, 4, 6, 8]  # two evaluations without gain after step 4: stopped at 8 of 12
    assert manifest["stats"]["steps"] == 8 and manifest["selection"]["best_step"] == 4
    kept = load_file(out / "adapter_model.safetensors")
    assert kept.keys() == seen[4].keys()
    assert all(torch.equal(kept[k], seen[4][k]) for k in kept)
    assert any(not torch.equal(kept[k], seen[8][k]) for k in kept), "steps 4 and 8 differ, so the test can fail"


def test_resume_keeps_the_selection_history(tmp_path, shared_layout, tiny_model_dir, monkeypatch) -> None:
    from tests.integration.test_tune_merge import _run_until

    recipe, data_dir = _prepare(_recipe(tmp_path, shared_layout, tiny_model_dir, max_steps=6))
    seen: dict = {}
    _scripted(monkeypatch, [40.0, 45.0, 41.0, 41.0], seen)
    out = recipe.run_dir() / "adapter"
    _run_until(recipe.train, recipe.model, data_dir, out, stop_after=4)  # killed after checkpoint 4 is written
    assert sorted(seen) == [2]
    manifest = tune(recipe.train, recipe.model, data_dir, out, resume=True, quiet=True)
    history = json.loads((out / "train_log.json").read_text())["selection"]["history"]
    assert [h["step"] for h in history] == [2, 4, 6]  # step 2 kept, 4 scored on resume, then 6
    assert manifest["selection"]["best_step"] == 4 and manifest["stats"]["resumed_from"] == "checkpoint-4"


def test_selection_settings_are_checked(tmp_path, shared_layout, tiny_model_dir) -> None:
    from tests.integration.test_tune_merge import _run_until

    recipe, data_dir = _prepare(_recipe(tmp_path, shared_layout, tiny_model_dir, eval_steps=50))
    with pytest.raises(EdgewriteError, match=r"train.eval_steps=50 exceeds the run's 4 steps"):
        tune(recipe.train, recipe.model, data_dir, tmp_path / "a", quiet=True)
    cfg = recipe.train.model_copy(update={"eval_steps": None, "save_steps": 2})
    out = tmp_path / "b"
    _run_until(cfg, recipe.model, data_dir, out, stop_after=2)
    changed = cfg.model_copy(update={"eval_steps": 2})
    with pytest.raises(EdgewriteError, match="made with other settings"):
        tune(changed, recipe.model, data_dir, out, resume=True, quiet=True)


def test_a_later_checkpoint_is_kept_unless_significantly_worse(tmp_path) -> None:
    """A lower mean on a few dozen rows is noise (the later checkpoint is kept); a clearly worse one is not."""
    from edgewrite.evaluate import gather

    rows = [
        {
            "task": "paraphrase",
            "source": f"The committee number {i} met on Tuesday to discuss the new budget proposal.",
            "references": [f"On Tuesday committee {i} talked about the proposed budget."],
            "id": f"p{i}",
        }
        for i in range(40)
    ]
    write_jsonl(tmp_path / "data" / "stsb" / "dev.jsonl", rows)
    (s,) = gather(tmp_path / "data", ["paraphrase"], "dev", None, headline_only=True)
    refs = [r["references"][0] for r in s.rows]
    sel = DevSelection.__new__(DevSelection)
    sel.sets, sel.history = [s], []
    sel.best, sel.best_outputs = {"step": 2, "mean": 90.0, "dev_loss": 1.0}, {s.key: refs}
    one_row_worse = {s.key: [s.rows[0]["source"], *refs[1:]]}
    copies = {s.key: [r["source"] for r in s.rows]}
    sel.outputs = {4: one_row_worse, 6: copies}
    near = {"step": 4, "mean": 89.0, "dev_loss": 1.0}  # lower than the kept mean: the old rule dropped it
    assert sel.is_better(near) and near["vs_kept"]["value"] < 0 <= near["vs_kept"]["hi"]
    worse = {"step": 6, "mean": 40.0, "dev_loss": 1.0}
    assert not sel.is_better(worse) and worse["vs_kept"]["hi"] < 0
