"""`edgewrite check` as a linter over many files (Harper as the editor: real edits, fast, deterministic)."""

import json
import subprocess
import sys
from pathlib import Path

from edgewrite.check import check_files, collect_files
from edgewrite.edit import load_editor


def _check(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgewrite.cli", "check", "-m", "harper", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _tree(root: Path) -> None:
    (root / "docs" / "sub").mkdir(parents=True)
    (root / "docs" / ".git").mkdir()
    (root / "docs" / "a.md").write_text(
        "---\ntitle: she go home\n---\n# Notes\n\n```\nshe go home\n```\n\nThis is a error and she go home.\n"
    )
    (root / "docs" / "sub" / "b.txt").write_text("All fine here.\r\n😀 He go out.\r\n")
    (root / "docs" / "sub" / "c.md").write_bytes(b"\xff\xfe not utf-8 He go.")
    (root / "docs" / "sub" / "d.bin").write_bytes(b"\x00\x01")  # not a text suffix: not collected from a folder
    (root / "docs" / ".git" / "e.md").write_text("He go.\n")  # hidden folders are skipped


def test_check_prints_one_line_per_edit_and_exits_1(tmp_path: Path) -> None:
    _tree(tmp_path)
    done = _check("docs", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "docs/a.md:10:9: determiner: a → an (determiner: 'a' → 'an')",
        "docs/a.md:10:25: verb form: go → goes (agreement: 'go' → 'goes' after 'she')",
        "docs/sub/b.txt:2:6: verb form: go → goes (agreement: 'go' → 'goes' after 'He')",  # emoji: one column
    ]
    assert "docs/sub/c.md: skipped: not UTF-8 text" in done.stderr and "3 suggestion(s) in 2 file(s)" in done.stderr
    rows = [json.loads(line) for line in _check("docs/**/*.txt", "--format", "json", cwd=tmp_path).stdout.splitlines()]
    assert [(r["path"], r["line"], r["column"], r["original"], r["replacement"], r["kind"]) for r in rows] == [
        ("docs/sub/b.txt", 2, 6, "go", "goes", "verb form")
    ]
    text = (tmp_path / "docs/sub/b.txt").read_bytes().decode("utf-8")
    assert text[rows[0]["start"] : rows[0]["end"]] == "go"
    off = _check("docs/a.md", "--disable", "determiner", "--disable", "verb form", cwd=tmp_path)
    assert off.returncode == 0 and off.stdout == ""


def test_check_exits_0_when_clean_and_2_on_bad_input(tmp_path: Path) -> None:
    (tmp_path / "ok.md").write_text("# Fine\n\nAll fine here.\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.py").write_text("print('code')\n")
    assert _check("ok.md", cwd=tmp_path).returncode == 0
    for args, message in [
        (["missing.md"], "missing.md does not exist"),
        (["*.rst"], "*.rst matches no file"),
        (["empty"], "empty holds no text files"),
        (["ok.md", "--format", "xml"], "--format xml"),
        (["ok.md", "--disable", "style"], "unknown kind"),
        (["ok.md", "--task", "poetry"], "unknown task"),
    ]:
        done = _check(*args, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)


def test_a_file_that_changes_while_checked_gets_no_suggestions(tmp_path: Path) -> None:
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    first.write_text("She go home.\n")
    second.write_text("He go out.\n")
    harper, _ = load_editor("harper")

    class Meddling:  # the editor, plus someone saving a.md while the check runs
        name, batches, runtime = "meddling", True, None

        def budget(self, text: str) -> int:
            return len(text)

        def edit(self, task, texts, done=None):
            first.write_text("She went home.\n")
            return harper.edit(task, texts, done)

    warnings: list[str] = []
    checked = check_files(Meddling(), collect_files([str(first), str(second)]), "grammar", warn=warnings.append)
    assert [c.path for c in checked] == [second] and [s.replacement for s in checked[0].suggestions] == ["goes"]
    assert warnings == [f"{first}: changed while being checked; its suggestions are left out: run the check again"]
