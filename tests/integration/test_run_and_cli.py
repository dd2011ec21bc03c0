import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgewrite.errors import EdgewriteError
from edgewrite.pipeline import run_recipe
from edgewrite.recipe import load_recipe


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgewrite.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_run_makes_a_merged_model_and_skips_finished_stages(tiny_recipe: Path) -> None:
    recipe = load_recipe(tiny_recipe)
    dirs = run_recipe(recipe, quiet=True, log=lambda *_: None)
    merged = json.loads((dirs["merge"] / "manifest.json").read_text())
    assert merged["kind"] == "merged" and merged["base_model"]["ref"] == recipe.model
    stamps = {k: (d / "manifest.json").stat().st_mtime for k, d in dirs.items()}
    lines: list[str] = []
    run_recipe(recipe, quiet=True, log=lines.append)
    assert all("up to date" in line for line in lines) and len(lines) == 3
    assert stamps == {k: (d / "manifest.json").stat().st_mtime for k, d in dirs.items()}
    changed = load_recipe(tiny_recipe, ["train.lr=5e-4"])
    with pytest.raises(EdgewriteError, match="belongs to a different run"):
        run_recipe(changed, quiet=True, log=lambda *_: None)


def test_run_continues_into_quantize(tiny_recipe: Path) -> None:
    recipe = load_recipe(tiny_recipe, ["quantize=[{format: gguf, bits: 8}]"])
    dirs = run_recipe(recipe, quiet=True, log=lambda *_: None)
    gguf = dirs["quantize:gguf-q8_0"]
    assert json.loads((gguf / "manifest.json").read_text())["parent"]["path"] == str(dirs["merge"])
    bad = load_recipe(tiny_recipe, ["quantize=[{format: gptq, bits: 5}]"])
    with pytest.raises(EdgewriteError, match="supported: 2, 3, 4, 8"):
        run_recipe(bad, quiet=True, log=lambda *_: None)


def test_help_does_not_import_torch() -> None:
    code = "import sys, edgewrite.cli; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert _cli("--help").returncode == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "--out", "OUT", "--data-dir", "no/such/dir"], "does not exist"),
        (["data", "--out", "OUT", "--tasks", "grammar,poetry"], "unknown task 'poetry'"),
        (["data", "--out", "OUT", "--set", "data.nope=1"], "has no key 'nope'"),
        (["tune", "--recipe", "no/such.yaml"], "does not exist"),
        (["merge", "EMPTY"], "no manifest.json"),
        (["run", "BADKEY"], "unknown key"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "BADKEY").write_text("name: x\ntrian: {}\n")
    args = [str(tmp_path / a) if a in ("OUT", "EMPTY", "BADKEY") else a for a in args]
    result = _cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "OUT").exists()


def test_empty_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _cli("data", "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path / "empty"))
    assert result.returncode == 2 and "no .jsonl files" in result.stderr
