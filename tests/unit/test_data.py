import json
from pathlib import Path

import pytest

from edgewrite.data import build_dataset, in_dev_bucket, normalize_key, read_jsonl
from edgewrite.errors import EdgewriteError
from edgewrite.recipe import DataConfig
from tests.conftest import tiny_sources, write_jsonl


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_normalized_key_ignores_tokenization_and_case() -> None:
    assert normalize_key("He do n't like it .") == normalize_key("he don't like it.")


def test_hash_split_is_deterministic_and_near_the_fraction() -> None:
    sources = [f"sentence number {i} about things" for i in range(4000)]
    dev = [s for s in sources if in_dev_bucket(s, 0.1)]
    assert dev == [s for s in sources if in_dev_bucket(s, 0.1)]
    assert 300 < len(dev) < 500


def test_split_is_leak_free_across_files_with_differently_tokenized_sources(tmp_path: Path) -> None:
    # The same sentences, tokenized differently in two files (like asset/dev and turkcorpus/dev).
    a = [
        {
            "task": "simplification",
            "source": f"The cat , number {i} , sat .",
            "references": [f"Cat {i} sat."],
            "id": f"a-{i}",
        }
        for i in range(300)
    ]
    b = [
        {
            "task": "simplification",
            "source": f"The cat, number {i}, sat.",
            "references": [f"Cat {i} sat."],
            "id": f"b-{i}",
        }
        for i in range(300)
    ]
    write_jsonl(tmp_path / "a" / "dev.jsonl", a)
    write_jsonl(tmp_path / "b" / "dev.jsonl", b)
    cfg = DataConfig(
        data_dir=str(tmp_path),
        sources=[{"path": "a/dev.jsonl"}, {"path": "b/dev.jsonl"}],
        tasks=["simplification"],
        dev_fraction=0.2,
        dev_per_task=None,
    )
    build_dataset(cfg, tmp_path / "out")
    train, dev = _rows(tmp_path / "out" / "train.jsonl"), _rows(tmp_path / "out" / "dev.jsonl")
    assert train and dev
    assert not {normalize_key(r["source"]) for r in train} & {normalize_key(r["source"]) for r in dev}


def test_caps_weights_general_and_empty_references(tiny_data_dir: Path, tmp_path: Path) -> None:
    write_jsonl(
        tiny_data_dir / "grammar" / "extra.jsonl",
        [{"task": "grammar", "source": "Deleted whole .", "references": [""], "id": "empty-ref"}],
    )
    sources = tiny_sources(tiny_data_dir) + [{"path": "grammar/extra.jsonl", "role": "train"}]
    cfg = DataConfig(
        data_dir=str(tiny_data_dir), sources=sources, train_per_task=2, task_weights={"grammar": 1.5}, general=1
    )
    manifest = build_dataset(cfg, tmp_path / "out")
    train = _rows(tmp_path / "out" / "train.jsonl")
    counts = {t: sum(r["task"] == t for r in train) for t in {r["task"] for r in train}}
    assert counts["grammar"] == 3 and counts["clarity"] == 2 and counts["general"] == 1
    assert manifest["dropped"]["grammar"] == 1
    assert all(r["references"] and r["instruction"] for r in train)
    assert manifest["counts"]["paraphrase"] == {"train": 2, "dev": 1}


def test_rebuilding_the_same_data_is_skipped_and_other_settings_refused(tiny_data_dir: Path, tmp_path: Path) -> None:
    cfg = DataConfig(data_dir=str(tiny_data_dir), sources=tiny_sources(tiny_data_dir))
    out = tmp_path / "out"
    first = build_dataset(cfg, out)
    assert build_dataset(cfg, out)["created"] == first["created"]
    with pytest.raises(EdgewriteError, match="different run"):
        build_dataset(cfg.model_copy(update={"dev_fraction": 0.3}), out)


def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"task": "grammar", "source": "a", "references": ["b"]}\n{not json\n')
    with pytest.raises(EdgewriteError, match=r"bad\.jsonl:2: not valid JSON"):
        read_jsonl(p)


@pytest.mark.parametrize(
    "row, message",
    [
        ({"task": "poetry", "source": "a", "references": ["b"]}, "unknown task 'poetry'"),
        ({"task": "grammar", "source": "a"}, "missing 'references'"),
        ({"task": "grammar", "source": "a", "references": "b"}, "list of strings"),
    ],
)
def test_bad_rows(tmp_path: Path, row: dict, message: str) -> None:
    p = tmp_path / "x.jsonl"
    write_jsonl(p, [row])
    with pytest.raises(EdgewriteError, match=message):
        read_jsonl(p)


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(EdgewriteError, match="does not exist"):
        build_dataset(DataConfig(data_dir=str(tmp_path / "nope")), tmp_path / "out")


def test_hub_data_set_offline_gives_a_clear_error(tmp_path: Path) -> None:
    cfg = DataConfig(data_dir=str(tmp_path), sources=[{"hub": "grammarly/coedit"}])
    with pytest.raises(EdgewriteError, match="could not load hub data set 'grammarly/coedit'"):
        build_dataset(cfg, tmp_path / "out")


def test_unchanged_pairs_are_capped_in_training_only(tmp_path: Path) -> None:
    rows = [
        {"task": "grammar", "source": f"Fine sentence {i} .", "references": [f"Fine sentence {i} ."], "id": f"same-{i}"}
        for i in range(80)
    ]
    rows += [
        {
            "task": "grammar",
            "source": f"Bad sentence {i} are .",
            "references": [f"Bad sentence {i} is ."],
            "id": f"edit-{i}",
        }
        for i in range(20)
    ]
    write_jsonl(tmp_path / "g" / "dev.jsonl", rows)
    cfg = DataConfig(
        data_dir=str(tmp_path),
        sources=[{"path": "g/dev.jsonl"}],
        tasks=["grammar"],
        max_unchanged_fraction=0.2,
        dev_per_task=None,
    )
    build_dataset(cfg, tmp_path / "out")
    train, dev = _rows(tmp_path / "out" / "train.jsonl"), _rows(tmp_path / "out" / "dev.jsonl")
    same = [r for r in train if r["source"] == r["references"][0]]
    assert 0 < len(same) <= 0.2 * len(train) + 1
    assert len(train) - len(same) == sum(1 for r in rows if r["id"].startswith("edit")) - sum(
        1 for r in dev if r["id"].startswith("edit")
    )
