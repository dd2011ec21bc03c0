"""Calibration text for GPTQ, the importance matrix and AutoRound: training rows as the model saw them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgewrite.artifacts import fingerprint, read_manifest
from edgewrite.errors import EdgewriteError


def calibration_texts(rows: list[dict], tokenizer: Any, style: str, stop: str) -> list[str]:
    """Training rows as the model saw them in tuning: prompt, answer, end-of-turn."""
    from edgewrite.tasks import build_prompt

    return [build_prompt(tokenizer, r["instruction"], r["source"], style) + r["references"][0] + stop for r in rows]


def calibration_rows(parent: dict, calibration: Path | None, samples: int) -> tuple[list[dict], str]:
    """A seeded sample of training rows (never dev rows) and where they came from: ``calibration`` if given,
    else the data the model was tuned on, else rows built from the default data folder (as GPT-QModel and
    llama-imatrix calibrate on a default text when given none)."""
    import random

    if calibration is not None:
        source = f"--calibration {calibration}"
    elif (data := (parent.get("data") or {}).get("path")) and (Path(data) / "train.jsonl").is_file():
        calibration, source = Path(data), f"the model's training rows ({data})"
    else:
        calibration = default_calibration()
        source = f"rows built from the default data folder ({read_manifest(calibration).get('data_dir')})"
    path = calibration / "train.jsonl"
    if not path.is_file():
        raise EdgewriteError(f"calibration folder {calibration} has no train.jsonl; make it with `edgewrite data`")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    random.Random(1234).shuffle(rows)
    return rows[:samples], source


def default_calibration() -> Path:
    """The default data recipe built once from the default data folder, into the cache."""
    from edgewrite.data import build_dataset
    from edgewrite.models import edgewrite_home
    from edgewrite.recipe import DataConfig, default_data_dir

    folder = default_data_dir()
    out = edgewrite_home() / "calibration" / f"default-{fingerprint(str(folder.resolve()))[:8]}"
    # a cache: an entry left by another spelling of the same folder, or by another version of the default
    # recipe, is rebuilt, not refused
    build_dataset(DataConfig(data_dir=str(folder)), out, data_dir=folder, force=True)
    return out
