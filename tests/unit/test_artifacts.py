from pathlib import Path

import pytest

from edgewrite.artifacts import existing_matches, read_manifest, staged_dir, write_manifest
from edgewrite.errors import EdgewriteError


def test_interrupted_stage_leaves_no_trusted_folder(tmp_path: Path) -> None:
    final = tmp_path / "stage"
    with pytest.raises(RuntimeError):
        with staged_dir(final) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("killed")
    assert not final.exists()
    assert not (tmp_path / "stage.partial").exists()  # a failed stage cleans up after itself
    with pytest.raises(RuntimeError):
        with staged_dir(final, resumable=True) as tmp:  # a resumable one keeps its checkpoints
            (tmp / "checkpoint").write_bytes(b"x")
            raise RuntimeError("killed")
    assert not final.exists() and (tmp_path / "stage.partial" / "checkpoint").is_file()


def test_finished_stage_is_renamed_with_hashes(tmp_path: Path) -> None:
    final = tmp_path / "stage"
    with staged_dir(final) as tmp:
        (tmp / "a.txt").write_text("hello")
        write_manifest(tmp, "data", fingerprint="abc")
    m = read_manifest(final, kinds=("data",))
    assert m["files"]["a.txt"]["bytes"] == 5 and len(m["files"]["a.txt"]["sha256"]) == 64
    assert not (tmp_path / "stage.partial").exists()


def test_existing_folder_of_another_run_is_refused_unless_forced(tmp_path: Path) -> None:
    final = tmp_path / "stage"
    with staged_dir(final) as tmp:
        write_manifest(tmp, "data", fingerprint="one")
    assert existing_matches(final, "one", force=False)
    with pytest.raises(EdgewriteError, match="--force"):
        existing_matches(final, "two", force=False)
    assert not existing_matches(final, "two", force=True)
    assert not final.exists()


def test_manifest_missing_or_wrong_kind(tmp_path: Path) -> None:
    with pytest.raises(EdgewriteError, match="no manifest.json"):
        read_manifest(tmp_path)
    write_manifest(tmp_path, "data", fingerprint="x")
    with pytest.raises(EdgewriteError, match="expected one of: adapter"):
        read_manifest(tmp_path, kinds=("adapter",))
