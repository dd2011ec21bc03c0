"""gguf-py's GGUFReader, with array elements read when asked instead of up front.

Why not the reader as is: for every element of every metadata array (a LLaMA tokenizer's 49,152 tokens, their
49,152 types and 48,900 merges) it builds one or two numpy views while it opens the file: 2.6 s per file on a
2-core machine whatever the model's size (0.1 s here). edgewrite opens GGUF files on every quantize (tensor
types, the read-back of template and stop token) and twice per rounding file. This subclass parses the same
layout, records where each element of an array starts (one pass over string lengths; numeric arrays are one
view), and builds an element's views when ``contents()`` or ``parts`` asks for it. Scalars, tensors and "r+"
mode are gguf-py's own code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.gguf_reader import ReaderField


class _LazyParts(Sequence):
    """A field's parts: its eager header parts, then ``per`` parts for each of ``n`` elements, built on access."""

    def __init__(self, head: list[Any], n: int, per: int, make: Callable[[int, int], Any]) -> None:
        self.head, self.n, self.per, self.make = head, n, per, make

    def __len__(self) -> int:
        return len(self.head) + self.per * self.n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index < len(self.head):
            return self.head[index]
        return self.make(*divmod(index - len(self.head), self.per))

    def data(self) -> range:
        """Indexes of the parts that hold the values (a string's bytes, not its length)."""
        return range(len(self.head) + self.per - 1, len(self), self.per)

    def with_head(self, head: list[Any]) -> _LazyParts:
        return _LazyParts([*head, *self.head], self.n, self.per, self.make)


class FastGGUFReader(GGUFReader):
    """``GGUFReader(path, mode)`` whose metadata arrays cost at most one pass over their lengths to open."""

    def _get_field_parts(self, orig_offs: int, raw_type: int) -> tuple[int, Any, Any, list[GGUFValueType]]:
        if GGUFValueType(raw_type) != GGUFValueType.ARRAY or self.byte_order != "I":
            return super()._get_field_parts(orig_offs, raw_type)
        raw_itype = self._get(orig_offs, np.uint32)
        itype = GGUFValueType(int(raw_itype[0]))
        alen = self._get(orig_offs + 4, np.uint64)
        n, offs = int(alen[0]), orig_offs + 12
        nptype = self.gguf_scalar_to_np.get(itype)
        if itype == GGUFValueType.STRING:
            starts, lengths = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
            buf = memoryview(self.data)
            for i in range(n):
                length = int.from_bytes(buf[offs : offs + 8], "little")
                starts[i], lengths[i] = offs, length
                offs += 8 + length

            def string(i: int, j: int) -> Any:
                start = int(starts[i])
                return self._get(start + 8, np.uint8, int(lengths[i])) if j else self._get(start, np.uint64)

            parts = _LazyParts([raw_itype, alen], n, 2, string)
        elif nptype is not None:
            values = self._get(offs, nptype, n)
            offs += int(values.nbytes)
            parts = _LazyParts([raw_itype, alen], n, 1, lambda i, _j: values[i : i + 1])
        else:  # arrays of arrays: gguf-py's own walk
            return super()._get_field_parts(orig_offs, raw_type)
        return offs - orig_offs, parts, parts.data(), [GGUFValueType.ARRAY, itype]

    def _build_fields(self, offs: int, count: int) -> int:
        for _ in range(count):
            orig_offs = offs
            kv_klen, kv_kdata = self._get_str(offs)
            offs += int(kv_klen.nbytes + kv_kdata.nbytes)
            raw_kv_type = self._get(offs, np.uint32)
            offs += int(raw_kv_type.nbytes)
            head = [kv_klen, kv_kdata, raw_kv_type]
            size, parts, idxs, types = self._get_field_parts(offs, raw_kv_type[0])
            name = bytes(kv_kdata).decode("utf-8")
            if isinstance(parts, _LazyParts):
                lazy = parts.with_head(head)
                field = ReaderField(orig_offs, name, lazy, lazy.data(), types)
            else:
                field = ReaderField(orig_offs, name, head + parts, [i + len(head) for i in idxs], types)
            self._push_field(field, skip_sum=True)
            offs += size
        return offs
