"""The embedded model's cache key is the GGUF's content: a reinstall (new path or modification time) of the
same file keeps every bench cell, cache and artifact keyed on it."""

import hashlib
import json
import os
from pathlib import Path

from edgewrite.models import _gguf_sha256


def test_the_key_is_the_content_not_the_path_or_time(tmp_path: Path) -> None:
    a = tmp_path / "a" / "m.gguf"
    a.parent.mkdir()
    a.write_bytes(b"GGUF" + bytes(range(256)) * 1000)
    b = tmp_path / "b" / "m.gguf"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    os.utime(b, (1_000_000, 1_000_000))
    out = tmp_path / "cache"
    assert _gguf_sha256(a, out) == _gguf_sha256(b, out) == hashlib.sha256(a.read_bytes()).hexdigest()
    b.write_bytes(b"GGUF" + b"\0" * 10)
    assert _gguf_sha256(b, out) != _gguf_sha256(a, out)


def test_the_hash_is_read_from_the_cache_while_the_file_is_unchanged(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF-1")
    out = tmp_path / "cache"
    out.mkdir()
    st = gguf.stat()
    source = {"gguf": str(gguf), "gguf_bytes": st.st_size, "gguf_mtime": st.st_mtime, "gguf_sha256": "memo"}
    (out / "manifest.json").write_text(json.dumps({"source": source}))
    assert _gguf_sha256(gguf, out) == "memo"  # a stat, not a read
    os.utime(gguf, (st.st_atime, st.st_mtime + 5))  # the file changed (or was reinstalled): hashed again
    assert _gguf_sha256(gguf, out) == hashlib.sha256(b"GGUF-1").hexdigest()
