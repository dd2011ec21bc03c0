"""Artifact directories: manifests, fingerprints and atomic (staged) writes.

Every stage writes into ``<dir>.partial/`` and renames it when complete, so an interrupted command
never leaves a directory that a later command would trust. A manifest records what an artifact is,
where it came from and the sha256 of every file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
_TOOLS = ("edgewrite", "torch", "transformers", "peft", "accelerate", "tokenizers", "llama-cpp-python")


def fingerprint(obj: Any) -> str:
    """A stable hash of a JSON-able object (dict order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_table(directory: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file below ``directory`` except the manifest itself."""
    table = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(directory).as_posix()
            table[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    return table


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_manifest(directory: Path, kind: str, **fields: Any) -> dict[str, Any]:
    manifest = {
        "schema": SCHEMA_VERSION,
        "kind": kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **fields,
        "versions": tool_versions(),
        "files": file_table(directory),
    }
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    os.replace(tmp, directory / MANIFEST)
    return manifest


def read_manifest(directory: Path | str, kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Read an artifact's manifest; refuse a folder that has none or is of the wrong kind."""
    directory = Path(directory)
    if not directory.exists():
        raise EdgewriteError(f"{directory} does not exist")
    path = directory / MANIFEST
    if not path.is_file():
        raise EdgewriteError(
            f"{directory} has no {MANIFEST}: it was not written by edgewrite or its stage did not finish; "
            "run the stage that makes it"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgewriteError(f"{path} is not valid JSON; re-run the stage that made it") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("kind"), str):
        raise EdgewriteError(f"{path} is not an edgewrite manifest (no 'kind'); re-run the stage that made it")
    if kinds and manifest.get("kind") not in kinds:
        raise EdgewriteError(f"{directory} is a '{manifest.get('kind')}' artifact; expected one of: {', '.join(kinds)}")
    return manifest


def ensure_writable(out: Path) -> None:
    """Fail before any work if an output folder cannot be made: a file in the way, a read-only place."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgewriteError(f"--out {out} is a file; give a folder")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{out.name}.write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise EdgewriteError(f"cannot write {out} ({e.strerror or e}); choose a writable --out") from e


def existing_matches(final: Path, fp: str, force: bool) -> bool:
    """True if ``final`` is a finished artifact with this fingerprint (the stage can be skipped).

    A folder that belongs to something else is refused unless ``force``; with ``force`` it is removed.
    """
    ensure_writable(final)
    if not final.exists():
        return False
    manifest_path = final / MANIFEST
    if manifest_path.is_file():
        try:
            found = json.loads(manifest_path.read_text())
            if isinstance(found, dict) and found.get("fingerprint") == fp:
                return True
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    if not force:
        raise EdgewriteError(
            f"{final} already exists and belongs to a different run (other inputs or settings); "
            "pass --force to replace it or choose another --out"
        )
    shutil.rmtree(final)
    return False


_DISK_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}
_OS_ERROR_CODE = re.compile(r"\(os error (\d+)\)")  # how Rust libraries (safetensors) report an errno


def _is_disk_full(e: BaseException) -> bool:
    """A write that failed for lack of room: an OSError, or a library's own error wrapping one."""
    if isinstance(e, OSError):
        return e.errno in _DISK_ERRORS
    m = _OS_ERROR_CODE.search(str(e))
    return bool(m) and int(m.group(1)) in _DISK_ERRORS


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    m = _OS_ERROR_CODE.search(str(e))
    return os.strerror(int(m.group(1))) if m else str(e)


@contextmanager
def staged_dir(final: Path, keep_partial: bool = False, main: bool = True, resumable: bool = False) -> Iterator[Path]:
    """Yield ``<final>.partial``; rename it to ``final`` only if the block finishes.

    With ``keep_partial`` an existing partial folder is reused (a resumed stage continues from its
    checkpoints); otherwise a stale one is cleared first. A failed block's folder is removed unless the
    stage is ``resumable`` (its checkpoints are what `--resume` needs). A full disk or a file-size limit
    ends in one line. ``main`` is False on the other processes of a multi-process run: they share the
    folder but never clear or rename it.
    """
    partial = final.with_name(final.name + ".partial")
    if main and partial.exists() and not keep_partial:
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    try:
        yield partial
    except Exception as e:
        if not resumable and main:
            shutil.rmtree(partial, ignore_errors=True)
        if _is_disk_full(e):
            raise EdgewriteError(
                f"could not write {final} ({_reason(e)}): free disk space (or raise the file-size limit) and re-run"
            ) from e
        raise
    except BaseException:
        if not resumable and main:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    if not main:
        return
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a results file whole or not at all: a temporary name beside it, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
