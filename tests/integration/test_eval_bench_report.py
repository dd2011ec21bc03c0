"""eval, bench and report on the tiny model, in the official-test layout of every EditEval set."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgewrite.artifacts import write_manifest
from edgewrite.bench import SCHEMA, bench, read_rows, rows_path
from edgewrite.errors import EdgewriteError
from edgewrite.evaluate import EVAL_SETS, HEADLINE, MIN_GOLD_EDITS, evaluate, gather
from edgewrite.report import load_bench, markdown_report, write_report
from tests.conftest import TASK_ROWS, write_jsonl

# 12 sentences with 2 gold edits each: 24 >= MIN_GOLD_EDITS, so grammar's headline is M2 F0.5.
M2_BLOCK = """S She go to school every days .
A 1 2|||SVA|||goes|||REQUIRED|||-NONE-|||0
A 5 6|||Nn|||day|||REQUIRED|||-NONE-|||0
"""
M2 = "\n".join(M2_BLOCK.replace("She", name) for name in ("She", "He", "Ann", "Bob", "Eve", "Tom") * 2) + "\n"


def _first(rel: str | tuple[str, ...]) -> str:
    return rel if isinstance(rel, str) else rel[0]


@pytest.fixture()
def test_split_dir(tmp_path: Path) -> Path:
    """Every evaluation set's official test layout: JSONL files (two rows each) and the M2 gold files."""
    root = tmp_path / "data"
    for spec in EVAL_SETS:
        if "test" not in spec.files:
            continue
        path = root / _first(spec.files["test"])
        if spec.kind == "m2":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(M2)
            for marker in spec.layout_marker.values():
                write_jsonl(root / marker, [{"task": "grammar", "source": "x", "references": ["x"], "id": "m"}])
            continue
        task = spec.row_task or spec.task
        n_refs = 4 if "gleu" in spec.metrics else 1
        rows = [
            {"task": task, "source": s, "references": [r] * n_refs, "id": f"{spec.name}-{task}-{i}"}
            for i, (s, r) in enumerate(TASK_ROWS[spec.task][:2])
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


def test_gather_reads_the_official_test_layout_of_every_task(test_split_dir: Path) -> None:
    sets = gather(test_split_dir, None, "test", limit=None)
    assert {s.spec.task for s in sets} == set(HEADLINE)
    keys = {s.key for s in sets}
    assert {"grammar/conll2014", "grammar/cweb-G", "neutralization/wnc"} <= keys
    conll14 = next(s for s in sets if s.key == "grammar/conll2014")
    assert conll14.rows[0]["references"] == ["She goes to school every day ."] and len(conll14.m2) == 12
    # WNC's test sample arrives as wnc_sample/test.jsonl: it is found there.
    assert next(s for s in sets if s.key == "neutralization/wnc").rows


def test_a_test_layout_without_its_gold_file_is_refused(test_split_dir: Path) -> None:
    (test_split_dir / "conll2014/raw/conll14st-test-data/noalt/official-2014.combined.m2").unlink()
    with pytest.raises(EdgewriteError, match=r"conll2014/test.jsonl is there but its gold file .* is missing"):
        gather(test_split_dir, ["grammar"], "test", limit=None)


def test_a_malformed_m2_line_is_named_with_file_and_line(test_split_dir: Path) -> None:
    path = test_split_dir / "conll2014/raw/conll14st-test-data/noalt/official-2014.combined.m2"
    lines = path.read_text().splitlines()
    lines[2] = "A five 6|||Nn|||day"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(EdgewriteError, match=r"official-2014\.combined\.m2:3: not an M2 edit line"):
        gather(test_split_dir, ["grammar"], "test", limit=None)


def test_limit_draws_a_seeded_random_sample_not_the_first_rows(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_jsonl(
        root / "stsb" / "dev.jsonl",
        [{"task": "paraphrase", "source": f"row {i} .", "references": [f"r {i}"], "id": f"s{i}"} for i in range(50)],
    )
    first = gather(root, ["paraphrase"], "dev", limit=5)[0]
    again = gather(root, ["paraphrase"], "dev", limit=5)[0]
    ids = [r["id"] for r in first.rows]
    assert ids == [r["id"] for r in again.rows] and len(ids) == 5 and first.total == 50
    assert ids != [f"s{i}" for i in range(5)]
    assert ids == sorted(ids, key=lambda x: int(x[1:])), "the sample keeps file order"
    for bad in (0, -3):
        with pytest.raises(EdgewriteError, match="give a positive number of rows"):
            gather(root, ["paraphrase"], "dev", limit=bad)


def test_a_task_without_rows_is_refused(test_split_dir: Path) -> None:
    with pytest.raises(EdgewriteError, match="has no rows in the 'dev' split"):
        gather(test_split_dir, ["clarity"], "dev", limit=None)


def test_eval_writes_scores_with_intervals_and_every_row(tiny_artifact: Path, test_split_dir: Path) -> None:
    result, target = evaluate(tiny_artifact, test_split_dir, ["grammar", "paraphrase"], split="test", batch_size=4)
    assert result["headline_source"]["grammar"] == "conll2014 f0.5"  # 24 gold edits: the M2 path
    assert result["sets"]["grammar/conll2014"]["gold_edits"] == 24 >= MIN_GOLD_EDITS
    for task, ci in result["headline_ci"].items():
        assert ci["lo"] <= result["headline"][task] <= ci["hi"]
    rows = [json.loads(x) for x in (target / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == result["rows"] == 12 + 12 + 2 + 2 + 2  # conll2014, cweb-G (M2), gmeg, stsb, mrpc
    assert json.loads((target / "eval.json").read_text())["mean"] == result["mean"]


def test_eval_refuses_an_unwritable_out_before_generating(tiny_artifact: Path, test_split_dir: Path, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(EdgewriteError, match="is a file"):
        evaluate(tiny_artifact, test_split_dir, ["grammar"], split="test", out=blocker)


def test_bench_then_report(tiny_artifact: Path, test_split_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = dict(threads=1, tasks=None, limit=None, split="test", data_dir=test_split_dir, quiet=True)
    doc = bench([], out, ["cpu"], base=str(tiny_artifact), latency_rows=24, **args)
    assert doc["schema"] == SCHEMA and doc["cells"][0]["artifact"] == "copy"
    cell = doc["cells"][1]
    assert cell["size_mb"] > 0 and cell["load_s"] > 0 and cell["peak_rss_mb"] > 50
    assert cell["edit_latency_ms"]["p50"] > 0 and cell["ttft_ms"]["p95"] >= cell["ttft_ms"]["p50"]
    assert cell["quality_batch_size"] == 16 and cell["latency_rows"] == 24  # batched quality; 2 single requests a set
    n_rows = sum(len(s.rows) for s in gather(test_split_dir, None, "test", limit=None))
    assert set(cell["quality"]["headline"]) == set(HEADLINE) and cell["rows"] == n_rows == 12 + 12 + 2 * 10
    assert cell["quality"]["headline_source"]["grammar"] == "conll2014 f0.5"
    rows = [json.dumps(r) for r in read_rows(out / "rows" / f"{cell['id']}.jsonl.gz")]  # compressed rows
    assert len(rows) == cell["rows"] and {"source", "output", "references", "raw_output"} <= set(json.loads(rows[0]))
    assert not (out / "rows" / f"{cell['id']}.jsonl").exists()
    assert doc["conditions"]["memory_bandwidth_gbs"] > 0 and 0 < cell["decode_bound_share"] < 1.5
    copy = doc["cells"][0]["quality"]
    assert copy["headline"]["grammar"] == 0.0  # copy proposes no edit: F0.5 = 0
    assert all(copy["headline_ci"][t]["lo"] <= copy["headline"][t] <= copy["headline_ci"][t]["hi"] for t in HEADLINE)
    pairs = {frozenset((c["a"], c["b"])) for c in doc["comparisons"]}
    harper = next(c for c in doc["cells"] if c.get("kind") == "system")
    assert pairs == {frozenset(p) for p in (("copy", cell["id"]), ("copy", harper["id"]), (cell["id"], harper["id"]))}
    assert all(set(c["tasks"]) == set(HEADLINE) for c in doc["comparisons"])
    edited = sum(json.loads(r)["output"] != json.loads(r)["source"] for r in rows) / len(rows)
    vs_copy = next(c for c in doc["comparisons"] if {c["a"], c["b"]} == {"copy", cell["id"]})
    assert vs_copy["differ"] == round(edited, 4)  # the share of rows whose output is not its input

    # A re-run finds the finished cell and does not run it again.
    stamp = (out / "cells" / f"{cell['id']}.json").stat().st_mtime
    bench([], out, ["cpu"], base=str(tiny_artifact), latency_rows=24, **args)
    assert (out / "cells" / f"{cell['id']}.json").stat().st_mtime == stamp

    _, verdicts, html_path = write_report(out, None, max_latency_ms=None, max_memory_mb=None)
    page = html_path.read_text()
    assert page.count("<svg") >= 3 and "Verdict" in page and "Budget" not in page
    assert "No tuned artifact" in page  # only the base model was benched: nothing to ship
    # Self-contained: nothing is fetched (namespace URIs inside the SVG are names, not requests).
    assert not re.search(r"""(src|href)=["']https?://|<link|@import""", page)
    assert verdicts and verdicts[0]["device"] == "cpu"
    md = html_path.with_suffix(".md").read_text()
    assert "[" in md and "95 %" in md
    _chromium_opens(html_path)

    # A tuned model benched beside it, trained on sources none of these rows holds, leaves the same rows
    # to score: the base model's cell is kept. One trained on a scored row's source removes that row
    # from every system, so the base model is scored again on what is left.
    tuned = _tuned_beside(tiny_artifact, tmp_path / "tuned-a", ["A sentence that no test row holds."])
    doc2 = bench([str(tuned)], out, ["cpu"], base=str(tiny_artifact), latency_rows=24, **args)
    assert (out / "cells" / f"{cell['id']}.json").stat().st_mtime == stamp and len(doc2["cells"]) == 4
    scored = read_rows(rows_path(out, cell["id"]))[-1]["source"]
    trained_on_a_row = _tuned_beside(tiny_artifact, tmp_path / "tuned-b", [scored])
    doc3 = bench([str(trained_on_a_row)], out, ["cpu"], base=str(tiny_artifact), latency_rows=24, **args)
    assert (out / "cells" / f"{cell['id']}.json").stat().st_mtime != stamp
    assert 0 < doc3["cells"][1]["rows"] < cell["rows"]


def _tuned_beside(tiny_artifact: Path, root: Path, trained_on: list[str]) -> Path:
    """A 'merged' artifact (the tiny weights) whose manifest names a training set of these sources."""
    data = root / "data"
    write_jsonl(data / "train.jsonl", [{"task": "grammar", "source": s, "target": s} for s in trained_on])
    merged = root / "merged"
    shutil.copytree(tiny_artifact, merged)
    write_manifest(
        merged,
        "merged",
        fingerprint=root.name,
        format="safetensors",
        stop_token="<|im_end|>",
        data={"path": str(data)},
    )
    return merged


def _chromium_opens(page: Path) -> None:
    """Where Chromium is installed (CI installs it; under CI=true it must be), the page loads and
    renders its verdict."""
    import os

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        assert os.environ.get("CI") != "true", "CI must install Chromium (apt-get install chromium)"
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


def test_report_refuses_an_older_schema_and_wrong_shapes(tmp_path: Path) -> None:
    (tmp_path / "bench.json").write_text(json.dumps({"schema": "edgewrite.bench/1", "cells": []}))
    with pytest.raises(EdgewriteError, match="re-run `edgewrite bench` with the same artifacts into a new --out"):
        load_bench(tmp_path)
    (tmp_path / "bench.json").write_text(json.dumps([1, 2]))
    with pytest.raises(EdgewriteError, match="re-run"):
        load_bench(tmp_path)
    (tmp_path / "bench.json").write_text(json.dumps({"schema": SCHEMA, "cells": [{"artifact": "copy"}]}))
    with pytest.raises(EdgewriteError, match="lacks its quality scores"):
        load_bench(tmp_path)
    with pytest.raises(EdgewriteError, match="no bench.json"):
        load_bench(tmp_path / "nothing")
    with pytest.raises(EdgewriteError, match="must be a positive number"):
        write_report(tmp_path, None, max_latency_ms=-5, max_memory_mb=None)


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


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgewrite.cli", *args], capture_output=True, text=True)


def test_eval_cli_bad_input_exits_2_with_one_line(tmp_path: Path, tiny_artifact: Path) -> None:
    done = _cli("eval", str(tmp_path))
    assert done.returncode == 2 and "no manifest.json" in done.stderr
    done = _cli("eval", str(tiny_artifact), "--limit", "0", "--data-dir", str(tmp_path))
    assert done.returncode == 2 and "give a positive number of rows" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_pre_on_puts_the_pre_pass_in_front_of_the_chosen_artifacts_only(tiny_artifact: Path, tmp_path: Path) -> None:
    from edgewrite.bench import _entries

    other = tmp_path / "other"
    shutil.copytree(tiny_artifact, other)
    base = tmp_path / "base"
    shutil.copytree(tiny_artifact, base)
    arts = [str(tiny_artifact), str(other)]
    every, _, _ = _entries(arts, str(base), (), "harper")
    chosen, _, _ = _entries(arts, str(base), (), "harper", [str(other)])
    assert [e["pre"] for e in every] == [None, None, None, "harper", "harper"]
    assert [(e["path"], e["pre"]) for e in chosen if e["pre"]] == [(str(other), "harper")]
    assert len(chosen) == 4


def test_two_runs_of_one_kind_get_told_apart_and_one_artifact_is_benched_once(
    tiny_artifact: Path, tmp_path: Path
) -> None:
    """The quickstart model beside the CPU recipe's: the later gets its run folder's name in its label
    (its cells and rows are files named by label); the same artifact listed twice is refused."""
    from edgewrite.bench import _entries

    first, second = tmp_path / "cpu" / "merged", tmp_path / "quickstart" / "merged"
    for p in (first, second):
        shutil.copytree(tiny_artifact, p)
        write_manifest(p, "merged", fingerprint=p.parent.name, format="safetensors", stop_token="<|im_end|>")
    entries, _, _ = _entries([str(first), str(second)], str(tiny_artifact), (), None)
    assert [e["label"] for e in entries] == ["base fp32 (untuned)", "tuned fp32", "tuned fp32 (quickstart)"]
    with pytest.raises(EdgewriteError, match="listed twice"):
        _entries([str(first), str(first)], str(tiny_artifact), (), None)
    # the untuned base model, which bench always includes, listed by its path: benched once, not refused
    alone, _, _ = _entries([str(tiny_artifact), str(first)], str(tiny_artifact), (), None)
    assert [e["label"] for e in alone] == ["base fp32 (untuned)", "tuned fp32"] and alone[0]["listed"] is True


def test_bench_puts_the_policy_row_beside_the_plain_model(
    tiny_artifact: Path, test_split_dir: Path, tmp_path: Path
) -> None:
    tuned = tmp_path / "tuned"
    shutil.copytree(tiny_artifact, tuned)
    write_manifest(tuned, "merged", fingerprint="tuned-x", format="safetensors", stop_token="<|im_end|>")
    args = dict(threads=1, tasks=["grammar"], limit=2, split="test", data_dir=test_split_dir, quiet=True)
    with pytest.raises(EdgewriteError, match="has no policy.json"):
        bench([str(tuned)], tmp_path / "b0", ["cpu"], base=str(tiny_artifact), latency_rows=2, policy=True, **args)
    (tuned / "policy.json").write_text(
        json.dumps({"adapter_fingerprint": "tuned-x", "tasks": {"grammar": {"threshold": 0.5}}})
    )
    doc = bench([str(tuned)], tmp_path / "b", ["cpu"], base=str(tiny_artifact), latency_rows=2, policy=True, **args)
    ids = {c["label"]: c["id"] for c in doc["cells"]}
    assert "tuned fp32 + policy" in ids and "tuned fp32" in ids, sorted(ids)
    pair = {ids["tuned fp32"], ids["tuned fp32 + policy"]}
    assert any({c["a"], c["b"]} == pair for c in doc["comparisons"])  # compared on the same rows
    cell = tmp_path / "b" / "cells" / f"{ids['tuned fp32 + policy']}.json"
    made = json.loads(cell.read_text())["spec_fingerprint"]
    again = bench([str(tuned)], tmp_path / "b", ["cpu"], base=str(tiny_artifact), latency_rows=2, policy=True, **args)
    assert json.loads(cell.read_text())["spec_fingerprint"] == made and len(again["cells"]) == len(doc["cells"])
    (tuned / "policy.json").write_text(  # the policy chosen again: its row is benched again, not kept
        json.dumps({"adapter_fingerprint": "tuned-x", "tasks": {"grammar": {"passes": 2}}})
    )
    bench([str(tuned)], tmp_path / "b", ["cpu"], base=str(tiny_artifact), latency_rows=2, policy=True, **args)
    assert json.loads(cell.read_text())["spec_fingerprint"] != made
    # --policy-on: only the artifacts it names get the policy row
    other = tmp_path / "other"
    shutil.copytree(tuned, other)
    write_manifest(other, "merged", fingerprint="other-x", format="safetensors", stop_token="<|im_end|>")
    (other / "policy.json").write_text(json.dumps({"adapter_fingerprint": "other-x", "tasks": {}}))
    both = [str(tuned), str(other)]
    doc = bench(
        both,
        tmp_path / "c",
        ["cpu"],
        base=str(tiny_artifact),
        latency_rows=2,
        policy=True,
        policy_on=[str(other)],
        **args,
    )
    assert [c["path"] for c in doc["cells"] if c.get("policy")] == [str(other)]
    with pytest.raises(EdgewriteError, match="--policy-on .* is not one of the benched artifacts"):
        bench(
            [str(tuned)], tmp_path / "d", ["cpu"], base=str(tiny_artifact), policy=True, policy_on=[str(other)], **args
        )
    with pytest.raises(EdgewriteError, match="--policy-on needs --policy"):
        bench([str(tuned)], tmp_path / "d", ["cpu"], base=str(tiny_artifact), policy_on=[str(tuned)], **args)


def test_bench_agreement_teacher_forces_each_export_on_its_fp32_parent(
    tiny_artifact: Path, test_split_dir: Path, tmp_path: Path
) -> None:
    from edgewrite.quantize import quantize

    merged = _tuned_beside(tiny_artifact, tmp_path / "tuned", ["A sentence that no test row holds."])
    gguf, _ = quantize(str(merged), "gguf", 8, tmp_path / "q8")
    out = tmp_path / "bench"
    args = dict(threads=1, tasks=["grammar", "paraphrase"], limit=None, split="test", data_dir=test_split_dir)
    doc = bench(
        [str(merged), str(gguf)], out, ["cpu"], base=str(tiny_artifact), latency_rows=4, quiet=True, agreement=2, **args
    )
    cells = {c["label"]: c for c in doc["cells"]}
    q8 = next(c for c in doc["cells"] if c.get("format") == "gguf")
    assert q8["agreement"]["parent"] == next(c["label"] for c in doc["cells"] if c.get("kind") == "merged")
    # Two rows per task of the parent's answers.
    assert q8["agreement"]["rows"] == 4 and set(q8["agreement"]["tasks"]) == {"grammar", "paraphrase"}
    # The random model's answers are runs of newlines cut off at the length limit (measured: 0.86, the
    # cut-off's last token retokenized differently); the real model's own answers agree at 1.0
    # (test_measure_agreement.py).
    assert 0.6 <= q8["agreement"]["token_agreement"] <= 1
    assert not any(c.get("agreement") for c in cells.values() if c is not q8)  # models with no fp32 parent here
    stored = json.loads((out / "cells" / f"{q8['id']}.json").read_text())
    assert stored["agreement"] == q8["agreement"]
    md = markdown_report(doc, [])
    assert "answer tokens agreeing with fp32" in md and f"{q8['agreement']['token_agreement'] * 100:.2f} %" in md
    with pytest.raises(EdgewriteError, match="--agreement -1"):
        bench([], out, ["cpu"], base=str(tiny_artifact), agreement=-1, **args)
