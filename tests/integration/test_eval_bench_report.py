"""eval, bench and report on the tiny model with two rows per evaluation set (official-test layout)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgewrite.artifacts import write_manifest
from edgewrite.bench import SCHEMA, bench
from edgewrite.errors import EdgewriteError
from edgewrite.evaluate import EVAL_SETS, HEADLINE, gather
from edgewrite.report import load_bench, write_report
from tests.conftest import TASK_ROWS, write_jsonl

M2 = """S She go to school every days .
A 1 2|||SVA|||goes|||REQUIRED|||-NONE-|||0
A 5 6|||Nn|||day|||REQUIRED|||-NONE-|||0

S This is fine .
A -1 -1|||noop|||-NONE-|||REQUIRED|||-NONE-|||0

"""


@pytest.fixture()
def test_split_dir(tmp_path: Path) -> Path:
    """Every evaluation set's test file, two rows each."""
    root = tmp_path / "data"
    for spec in EVAL_SETS:
        path = root / spec.files["test"]
        if spec.kind == "m2":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(M2)
            continue
        task = spec.row_task or spec.task
        pairs = TASK_ROWS["fluency" if spec.task == "fluency" else spec.task][:2]
        n_refs = 4 if "gleu" in spec.metrics else 1
        rows = [
            {"task": task, "source": s, "references": [r] * n_refs, "id": f"{spec.name}-{i}"}
            for i, (s, r) in enumerate(pairs)
        ]
        existing = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        write_jsonl(path, existing + rows)
    return root


@pytest.fixture()
def tiny_artifact(tiny_model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "tiny-base"
    shutil.copytree(tiny_model_dir, out)
    write_manifest(out, "base", fingerprint="tiny", format="safetensors", stop_token="<|im_end|>")
    return out


def test_gather_reads_test_files_of_every_task(test_split_dir: Path) -> None:
    sets = gather(test_split_dir, None, "test", limit=None)
    assert {s.spec.task for s in sets} == set(HEADLINE)
    m2 = next(s for s in sets if s.spec.kind == "m2")
    assert m2.rows[0]["references"] == ["She goes to school every day ."] and len(m2.m2) == 2


def test_a_task_without_rows_is_refused(test_split_dir: Path) -> None:
    with pytest.raises(EdgewriteError, match="has no rows in the 'dev' split"):
        gather(test_split_dir, ["clarity"], "dev", limit=None)


def test_bench_then_report(tiny_artifact: Path, test_split_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    doc = bench(
        [],
        out,
        ["cpu"],
        threads=1,
        tasks=None,
        limit=2,
        split="test",
        data_dir=test_split_dir,
        quiet=True,
        base=str(tiny_artifact),
    )
    assert doc["schema"] == SCHEMA and [c["artifact"] for c in doc["cells"]][0] == "copy"
    cell = doc["cells"][1]
    for key in ("load_s", "decode_tok_s", "peak_rss_mb", "size_mb"):
        assert cell[key] is None or cell[key] >= 0
    assert cell["edit_latency_ms"]["p50"] > 0 and cell["ttft_ms"]["p95"] >= cell["ttft_ms"]["p50"]
    assert set(cell["quality"]["headline"]) == set(HEADLINE) and cell["rows"] == 22
    rows = (out / "rows" / next((out / "rows").iterdir()).name).read_text().splitlines()
    assert {"source", "output", "references", "raw_output"} <= set(json.loads(rows[0]))
    copy = doc["cells"][0]["quality"]["headline"]
    assert copy["grammar"] == 0.0  # copy proposes no edit: F0.5 = 0

    # A re-run finds the finished cell and does not run it again.
    stamp = (out / "cells").iterdir().__next__().stat().st_mtime
    bench(
        [],
        out,
        ["cpu"],
        threads=1,
        tasks=None,
        limit=2,
        split="test",
        data_dir=test_split_dir,
        quiet=True,
        base=str(tiny_artifact),
    )
    assert next((out / "cells").iterdir()).stat().st_mtime == stamp

    _, verdicts, html_path = write_report(out, None, max_latency_ms=None, max_memory_mb=None)
    page = html_path.read_text()
    assert "<svg" in page and "Verdict" in page
    # Self-contained: nothing is fetched (namespace URIs inside the SVG are names, not requests).
    assert not re.search(r"""(src|href)=["']https?://|<link|@import""", page)
    assert verdicts and verdicts[0]["device"] == "cpu"
    _chromium_opens(html_path)


def _chromium_opens(page: Path) -> None:
    """Where Chromium is installed (CI installs it), the page must load and render its verdict."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "Verdict" in done.stdout


def test_report_refuses_an_older_schema(tmp_path: Path) -> None:
    (tmp_path / "bench.json").write_text(json.dumps({"schema": "edgewrite.bench/0", "cells": []}))
    with pytest.raises(EdgewriteError, match="re-run `edgewrite bench`"):
        load_bench(tmp_path)
    with pytest.raises(EdgewriteError, match="no bench.json"):
        load_bench(tmp_path / "nothing")


def test_bench_refuses_cuda_without_gpu_and_adapters(tmp_path: Path, tiny_artifact: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(EdgewriteError, match="no CUDA GPU"):
            bench([], tmp_path / "b", ["cuda"], None, None, 1, "test", tmp_path, quiet=True, base=str(tiny_artifact))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    write_manifest(adapter, "adapter", fingerprint="a")
    with pytest.raises(EdgewriteError, match="merge it first"):
        bench(
            [str(adapter)],
            tmp_path / "b",
            ["cpu"],
            None,
            None,
            1,
            "test",
            tmp_path,
            quiet=True,
            base=str(tiny_artifact),
        )


def test_eval_cli_without_manifest_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgewrite.cli", "eval", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 2 and "no manifest.json" in done.stderr
