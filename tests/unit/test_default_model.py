"""Which model commands use without --model: only the user changes it (`edgewrite models --use`)."""

import json
from pathlib import Path

import pytest

from edgewrite.errors import EdgewriteError
from edgewrite.shipped import artifact_path, choose_default, chosen_default, default_artifact


def _artifact(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text("{}")
    return path


def test_the_user_chooses_the_default_and_a_report_does_not(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEWRITE_HOME", str(tmp_path / "home"))
    mine, reported = _artifact(tmp_path / "mine"), _artifact(tmp_path / "reported")
    assert chosen_default("cpu") is None
    choose_default(str(mine), "cpu")
    assert chosen_default("cpu") == str(mine.resolve()) and chosen_default("cuda") is None
    assert default_artifact("cpu") == mine.resolve()
    # what `edgewrite report` leaves behind is its recommendation, not the default
    (tmp_path / "home" / "recommended.json").write_text(json.dumps({"cpu": str(reported)}))
    assert default_artifact("cpu") == mine.resolve()
    choose_default(None, "cpu")  # `edgewrite models --use shipped`
    assert chosen_default("cpu") is None
    assert artifact_path(str(mine)) == mine  # a folder is itself


def test_a_bad_or_vanished_choice_is_one_clear_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEWRITE_HOME", str(tmp_path / "home"))
    with pytest.raises(EdgewriteError, match="not an edgewrite artifact"):
        choose_default(str(tmp_path), "cpu")
    gone = _artifact(tmp_path / "gone")
    choose_default(str(gone), "cpu")
    (gone / "manifest.json").unlink()
    gone.rmdir()
    with pytest.raises(EdgewriteError, match="is gone"):
        default_artifact("cpu")
    (tmp_path / "home" / "default.json").write_text("[damaged")
    assert chosen_default("cpu") is None
