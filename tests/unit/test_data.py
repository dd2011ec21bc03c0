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


def test_sts_csv_as_published_with_a_score_cut_and_the_jsonl_ids(tmp_path: Path) -> None:
    """STS-B's CSV (sentence1,sentence2,score, no header): pairs at or above min_score (default 5.0, EditEval's
    cut), sentence1 -> sentence2, ids those of the normalized stsb/*.jsonl for the same rows."""
    csv = tmp_path / "stsb" / "raw" / "stsb-en-train.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text(
        'A plane is taking off.,An air plane is taking off.,5.0\n"A man, tall, sings.",A tall man sings.,4.2\n'
        "A cat.,A dog.,0.4\n",
        encoding="utf-8",
    )

    def built(**source: object) -> list[dict]:
        cfg = DataConfig(
            data_dir=str(tmp_path),
            sources=[{"path": "stsb/raw/stsb-en-train.csv", "role": "train", **source}],
            tasks=["paraphrase"],
        )
        build_dataset(cfg, tmp_path / "out", force=True)
        return sorted(_rows(tmp_path / "out" / "train.jsonl"), key=lambda r: r["id"])

    assert [(r["id"], r["source"], r["references"]) for r in built()] == [
        ("stsb-train-0", "A plane is taking off.", ["An air plane is taking off."])
    ]
    assert [r["id"] for r in built(min_score=4.0)] == ["stsb-train-0", "stsb-train-1"]
    assert built(min_score=4.0)[1]["source"] == "A man, tall, sings."  # quoted commas kept
    csv.write_text("only one field\n", encoding="utf-8")
    with pytest.raises(EdgewriteError, match=r"stsb-en-train.csv:1: not an STS row"):
        built()


def test_max_rows_takes_a_fixed_sample_of_training_rows_and_min_score_reads_ids(tmp_path: Path) -> None:
    rows = [
        {
            "task": "paraphrase",
            "source": f"Pair {i} one.",
            "references": [f"Pair {i} two."],
            "id": f"x-{i}-s{3 + i % 3}.0",
        }
        for i in range(60)
    ]
    write_jsonl(tmp_path / "x" / "train.jsonl", rows)

    def ids(**source: object) -> list[str]:
        cfg = DataConfig(
            data_dir=str(tmp_path),
            sources=[{"path": "x/train.jsonl", "role": "train", **source}],
            tasks=["paraphrase"],
        )
        build_dataset(cfg, tmp_path / "out", force=True)
        return sorted(r["id"] for r in _rows(tmp_path / "out" / "train.jsonl"))

    assert len(ids()) == 60
    sample = ids(max_rows=10)
    assert len(sample) == 10 and sample == ids(max_rows=10)  # the same rows every build
    assert set(sample) < set(ids(max_rows=20))  # a larger cap keeps the smaller one's rows
    kept = ids(min_score=4.0)
    assert len(kept) == 40 and all(float(i.rsplit("-s", 1)[1]) >= 4.0 for i in kept)


def test_unset_per_source_settings_keep_older_data_fingerprints(tmp_path: Path) -> None:
    from edgewrite.data import data_fingerprint

    plain = DataConfig(data_dir=str(tmp_path), sources=[{"path": "x/train.jsonl"}])
    capped = DataConfig(data_dir=str(tmp_path), sources=[{"path": "x/train.jsonl", "max_rows": 5}])
    dumped = plain.model_dump(exclude={"custom_tasks"})
    for s in dumped["sources"]:
        del s["max_rows"], s["min_score"]
    from edgewrite.artifacts import fingerprint

    before = fingerprint({"config": dumped, "data_dir": str(tmp_path.resolve()), "seed": 42})
    assert data_fingerprint(plain, tmp_path, 42) == before  # what builds made before the settings existed
    assert data_fingerprint(capped, tmp_path, 42) != before
