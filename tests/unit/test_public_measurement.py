"""Pieces the benchmark scripts use are public and tested; no script imports a private name."""

import ast
import json
from pathlib import Path

import numpy as np

from edgewrite.bench import percentile
from edgewrite.train import read_rows

ROOT = Path(__file__).resolve().parents[2]


def test_percentile_interpolates_like_numpy() -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0.0, 0.5, 0.95, 1.0):
        assert percentile(values, q) == np.percentile(values, 100 * q)
    assert percentile([], 0.5) is None


def test_read_rows_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"a": 1}) + "\n\n" + json.dumps({"a": 2}) + "\n")
    assert read_rows(path) == [{"a": 1}, {"a": 2}]


def test_no_script_imports_a_private_name() -> None:
    found = []
    for folder in ("benchmarks", "experiments", "scripts"):
        for path in (ROOT / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgewrite"):
                    found += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert found == []
