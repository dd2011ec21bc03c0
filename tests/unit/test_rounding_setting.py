"""One way to say how a GGUF export is rounded: `quantize --rounding`, a recipe's `rounding:` and the
manifest's ``rounding`` are one setting, `quantize.settings.Rounding`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgewrite.errors import EdgewriteError
from edgewrite.quantize.settings import Rounding, from_manifest


def test_each_written_form_reads_back_as_itself(tmp_path: Path) -> None:
    matrix = tmp_path / "imatrix.npz"
    np.savez(matrix, **{"blk.0.attn_q.weight": np.ones(4, dtype=np.float32)})
    tuned = tmp_path / "rounding.npz"
    np.savez(tuned, meta=np.array(['{"format": 1}']))
    cases = {
        None: ("nearest", 0, None),
        "nearest": ("nearest", 0, None),
        "imatrix": ("imatrix", 0, None),
        f"imatrix:{matrix}": ("imatrix", 0, matrix),
        "autoround": ("autoround", 200, None),
        "autoround:50": ("autoround", 50, None),
        str(tuned): ("tuned", 0, tuned),
        str(matrix): ("imatrix", 0, matrix),  # a bare file is told apart by what it holds
    }
    for text, (method, steps, file) in cases.items():
        r = Rounding.parse(text)
        assert (r.method, r.steps, r.file) == (method, steps, file), text
        assert Rounding.parse(str(r)) == r
    assert str(Rounding.parse("autoround:200")) == "autoround"
    assert Rounding.parse(f"imatrix:{matrix}").manifest_text() == "imatrix:imatrix.npz"
    assert Rounding.parse(str(tuned)).manifest_text() == "rounding.npz"
    assert Rounding.parse("imatrix").needs_calibration and not Rounding.parse(str(matrix)).needs_calibration


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stochastic", "not a rounding and no such file"),
        ("autoround:0", "positive number of steps"),
        ("autoround:x", "positive number of steps"),
    ],
)
def test_what_is_not_a_rounding_is_named(text: str, message: str) -> None:
    with pytest.raises(EdgewriteError, match=message):
        Rounding.parse(text)


def test_a_folder_or_a_file_that_is_no_npz_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EdgewriteError, match="is a folder"):
        Rounding.parse(str(tmp_path))
    junk = tmp_path / "x.bin"
    junk.write_bytes(b"\x00\x01")
    with pytest.raises(EdgewriteError, match="neither a rounding.npz nor an imatrix.npz"):
        Rounding.parse(str(junk))


def test_what_the_rest_of_the_command_asks_must_leave_it_meaning_something(tmp_path: Path) -> None:
    Rounding().check("onnx")  # nearest goes with every format
    with pytest.raises(EdgewriteError, match="needs --format gguf"):
        Rounding.parse("imatrix").check("gptq")
    with pytest.raises(EdgewriteError, match="untuned base"):
        Rounding.parse("autoround").check("gguf", runtime_lora=True)
    with pytest.raises(EdgewriteError, match="imatrix:FILE, not imatrix"):
        Rounding.parse("imatrix").check("gguf", runtime_lora=True)
    Rounding("imatrix", file=tmp_path / "m.npz").check("gguf", runtime_lora=True)
    with pytest.raises(EdgewriteError, match="leave out --tensor-type"):
        Rounding("tuned", file=tmp_path / "r.npz").check("gguf", tensor_types=["attn_v=Q8_0"])


def test_the_manifest_says_it_and_older_manifests_are_read_from_their_settings() -> None:
    assert from_manifest({"format": "gguf", "rounding": "autoround:50"}) == Rounding("autoround", steps=50)
    assert from_manifest({"format": "gguf", "rounding": "rounding.npz"}) == Rounding("tuned", file=Path("rounding.npz"))
    legacy = {
        "autoround": {"format": "gguf", "settings": {"rounding": "autoround", "autoround_iters": 50}},
        "tuned": {"format": "gguf", "settings": {"rounding": "autoround", "rounding_sha256": "ab"}},
        "imatrix": {"format": "gguf", "settings": {"imatrix_rows": 256}},
        "nearest": {"format": "gguf", "settings": {"type": "Q4_K_M"}},
    }
    assert {k: from_manifest(m).method for k, m in legacy.items()} == {k: k for k in legacy}
    assert from_manifest({"format": "onnx"}) is None


def test_a_recipe_says_it_the_same_way() -> None:
    from pydantic import ValidationError

    from edgewrite.recipe import QuantizeSpec

    assert QuantizeSpec(rounding="autoround:200").rounding == "autoround"
    assert QuantizeSpec().rounding == "nearest"
    with pytest.raises(ValidationError, match="not a rounding"):
        QuantizeSpec(rounding="stochastic")
