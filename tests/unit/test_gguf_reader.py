"""edgewrite's GGUF reader opens files without building a view per array element; what it reads must be
exactly what gguf-py's GGUFReader reads, field by field, part by part and tensor by tensor."""

import numpy as np
import pytest
from gguf import GGUFReader, GGUFValueType, GGUFWriter

from edgewrite.models import default_gguf_path
from edgewrite.quantize.gguf_reader import FastGGUFReader


def _same(path: str) -> FastGGUFReader:
    ours, theirs = FastGGUFReader(path), GGUFReader(path)
    assert list(ours.fields) == list(theirs.fields)
    for name, want in theirs.fields.items():
        got = ours.fields[name]
        assert (got.offset, got.types, list(got.data)) == (want.offset, want.types, list(want.data)), name
        assert got.contents() == want.contents(), name
        assert len(got.parts) == len(want.parts), name
        assert all(a.dtype == b.dtype and bytes(a) == bytes(b) for a, b in zip(got.parts, want.parts, strict=True))
    assert ours.data_offset == theirs.data_offset
    for a, b in zip(ours.tensors, theirs.tensors, strict=True):
        assert (a.name, a.tensor_type, a.n_bytes, a.data_offset) == (b.name, b.tensor_type, b.n_bytes, b.data_offset)
        assert np.array_equal(a.data, b.data)
    return ours


def test_the_embedded_model_s_gguf_reads_the_same_as_with_gguf_py() -> None:
    """SmolLM2's GGUF: 49,152 tokens, their types and 48,900 merges, 272 tensors."""
    reader = _same(str(default_gguf_path()))
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert tokens.contents(2) == "<|im_end|>" and tokens.contents(slice(0, 2)) == ["<|endoftext|>", "<|im_start|>"]
    assert tokens.contents(-1) == tokens.contents()[-1] and len(tokens.contents()) == 49152
    assert reader.fields["tokenizer.ggml.token_type"].contents(0) == 3  # a control token
    with pytest.raises(IndexError):
        tokens.parts[len(tokens.parts)]


def test_every_array_kind_reads_the_same(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "kinds.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_array("t.strings", ["a", "", "ünïcode", "x" * 300])
    writer.add_array("t.ints", [1, -2, 3])
    writer.add_array("t.floats", [0.5, 1.5])
    writer.add_array("t.bools", [True, False])
    writer.add_array("t.nested", [[1, 2], [3]])
    writer.add_string("t.string", "plain")
    writer.add_tensor("w", np.arange(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = _same(str(path))
    assert reader.fields["t.strings"].contents() == ["a", "", "ünïcode", "x" * 300]
    assert reader.fields["t.ints"].types == [GGUFValueType.ARRAY, GGUFValueType.INT32]
    assert reader.fields["t.nested"].contents() == GGUFReader(str(path)).fields["t.nested"].contents()
