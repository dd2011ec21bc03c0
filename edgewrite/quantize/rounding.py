"""A tuned rounding as data: AutoRound's Q4_0 choices, kept as their difference from nearest rounding.

``quantize --rounding autoround`` needs the model's training rows and minutes of tuning; a laptop user of the
shipped adapter has neither. What the tuning decides, though, is small: per block of 32 weights a scale
(fp16), and per weight whether it rounds up or down. Against nearest rounding *with the same scale* most
weights agree, so this file stores, per Q4_0 tensor, the scales and the difference ``q - nearest(w / d)``
(mostly 0, else ±1), compressed with LZMA inside an ``.npz`` (numpy reads such zip members as usual).
AutoRound's Q4_0 file keeps the token embedding in Q8_0 with scales of its own; it is kept the same way.

Applying it needs only the merged model: llama.cpp's converter writes its F16 GGUF, llama.cpp's quantizer
writes an ordinary Q4_0 file of the same tensor types as the tuned one (the header, tokenizer and chat
template are llama.cpp's own), and the tuned tensors' blocks are then rewritten in place from the scales,
the F16 weights and the differences. Every tensor's sha256 is checked against the tuned file's: on the
model the rounding was made for, the result is that file, byte for byte, in its tensors.

No library does this: AutoRound writes its GGUF in one go from its tuning state, and llama.cpp's quantizer
has no input for a chosen rounding.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edgewrite.errors import EdgewriteError

FORMAT = 1
BLOCK = 32  # weights per block in both types: one fp16 scale d, then the 32 values
# type -> (bytes per block, lowest and highest value). Q4_0 holds the tuned matrices; AutoRound's Q4_0 file
# keeps the token embedding in Q8_0, with scales of its own (negative ones), so that one is kept the same way.
TYPES = {"Q4_0": (2 + BLOCK // 2, -8, 7), "Q8_0": (2 + BLOCK, -128, 127)}
TUNED_TYPES = ("Q4_0",)
FILE_NAME = "rounding.npz"


def unpack(raw: np.ndarray, type_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Block bytes -> (d: fp16 per block, q: int8, 32 per block), in the file's element order."""
    size = TYPES[type_name][0]
    blocks = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, size)
    d = blocks[:, :2].copy().view(np.float16).reshape(-1)
    qs = blocks[:, 2:]
    if type_name == "Q8_0":
        return d, qs.copy().view(np.int8)
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # Q4_0: elements j and j + 16 share byte j
    return d, q


def pack(d: np.ndarray, q: np.ndarray, type_name: str) -> np.ndarray:
    """The inverse of :func:`unpack`: (n_blocks, bytes per block) uint8."""
    out = np.empty((len(d), TYPES[type_name][0]), dtype=np.uint8)
    out[:, :2] = np.asarray(d, dtype=np.float16).reshape(-1, 1).view(np.uint8)
    if type_name == "Q8_0":
        out[:, 2:] = q.astype(np.int8).view(np.uint8)
        return out
    u = (q.astype(np.int16) + 8).astype(np.uint8)
    out[:, 2:] = u[:, : BLOCK // 2] | (u[:, BLOCK // 2 :] << 4)
    return out


def nearest(w: np.ndarray, d: np.ndarray, type_name: str = "Q4_0") -> np.ndarray:
    """Nearest rounding of (n_blocks, 32) weights on the grid of the given scales (IEEE float32, so the same
    on every machine)."""
    _, lo, hi = TYPES[type_name]
    scale = d.astype(np.float32).reshape(-1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(scale != 0, w.astype(np.float32) / scale, np.float32(0))
    return np.clip(np.rint(x), lo, hi).astype(np.int8)


def _weights(tensor: Any) -> np.ndarray:
    if tensor.tensor_type.name not in ("F16", "F32"):
        raise EdgewriteError(f"the reference GGUF stores {tensor.name} as {tensor.tensor_type.name}, not F16/F32")
    return np.asarray(tensor.data).reshape(-1, BLOCK)


def _digest(tensor: Any) -> str:
    return hashlib.sha256(np.ascontiguousarray(tensor.data).view(np.uint8).tobytes()).hexdigest()


def build(tuned: Path, reference: Path, out: Path, model_fingerprint: str | None) -> dict[str, Any]:
    """The rounding of ``tuned`` (a Q4_0 GGUF) relative to ``reference`` (the same model's F16 GGUF from
    llama.cpp's converter), written to ``out``. Returns its summary."""
    from edgewrite.quantize.gguf_reader import FastGGUFReader as GGUFReader

    tuned_r, ref_r = GGUFReader(str(tuned)), GGUFReader(str(reference))
    refs = {t.name: t for t in ref_r.tensors}
    tensors, arrays, changed, total = [], {}, 0, 0
    for t in tuned_r.tensors:
        entry = {"name": t.name, "type": t.tensor_type.name, "sha256": _digest(t)}
        if t.name not in refs or int(refs[t.name].n_elements) != int(t.n_elements):
            raise EdgewriteError(f"{reference} does not hold {t.name} as {tuned} does; not the same model")
        if t.tensor_type.name in TYPES:
            d, q = unpack(t.data, t.tensor_type.name)
            diff = q.astype(np.int16) - nearest(_weights(refs[t.name]), d, t.tensor_type.name)
            arrays[f"{t.name}/d"] = d
            arrays[f"{t.name}/diff"] = diff.astype(np.int8)
            changed += int(np.count_nonzero(diff))
            total += diff.size
            entry["kept"] = True
        tensors.append(entry)
    meta = {
        "format": FORMAT,
        "type": "Q4_0",
        "model_fingerprint": model_fingerprint,
        "tuned_sha256": hashlib.sha256(tuned.read_bytes()).hexdigest(),
        "tensors": tensors,
        "weights_kept": total,
        "weights_off_nearest": changed,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_LZMA) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(value), allow_pickle=False)
            member = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))  # same bytes on every rebuild
            member.compress_type = zipfile.ZIP_LZMA
            zf.writestr(member, buf.getvalue())
    tmp.replace(out)
    return {
        "file": out.name,
        "bytes": out.stat().st_size,
        "tensors_kept": sum(1 for e in tensors if e.get("kept")),
        "weights_off_nearest": round(changed / max(total, 1), 4),
    }


def read_meta(path: Path) -> dict[str, Any]:
    """The header of a rounding file; one clear line if ``path`` is not one."""
    if not path.exists():
        raise EdgewriteError(f"rounding file {path} does not exist")
    if not path.is_file():
        raise EdgewriteError(f"{path} is a folder; give the rounding file itself (e.g. {path}/{FILE_NAME})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"].reshape(-1)[0]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as e:
        raise EdgewriteError(
            f"{path} is not a rounding file (one is written by `edgewrite quantize --rounding autoround`): {e}"
        ) from e
    if meta.get("format") != FORMAT or meta.get("type") not in TUNED_TYPES:
        raise EdgewriteError(f"{path}: a rounding file of another format ({meta.get('format')}); re-make it")
    return meta


def overrides(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """llama.cpp ``--tensor-type`` overrides that make its quantizer write every tensor in the tuned file's
    type (the tuned tensors are Q4_0, the quantizer's own type for the rest may differ)."""
    return [
        (f"^{e['name'].replace('.', '[.]')}$", e["type"])
        for e in meta["tensors"]
        if e["type"] not in ("F32", *TUNED_TYPES)  # llama.cpp keeps 1-D tensors (norms) in F32 anyway
    ]


def apply(path: Path, reference: Path, target: Path, log=print) -> dict[str, Any]:
    """Rewrite the tuned tensors of ``target`` (a Q4_0 GGUF llama.cpp wrote from ``reference``) in place."""
    from edgewrite.quantize.gguf_reader import FastGGUFReader as GGUFReader

    meta = read_meta(path)
    entries = {e["name"]: e for e in meta["tensors"]}
    ref_r, out_r = GGUFReader(str(reference)), GGUFReader(str(target), "r+")
    refs = {t.name: t for t in ref_r.tensors}
    got = {t.name: t for t in out_r.tensors}
    if set(got) != set(entries):
        missing = sorted(set(entries) ^ set(got))[:3]
        raise EdgewriteError(f"the rounding file does not fit this model (tensors differ: {', '.join(missing)})")
    with np.load(path, allow_pickle=False) as npz:
        for name, e in entries.items():
            t = got[name]
            if t.tensor_type.name != e["type"]:
                raise EdgewriteError(
                    f"llama.cpp wrote {name} as {t.tensor_type.name}, the rounding file has it as {e['type']}"
                )
            if not e.get("kept"):
                continue
            d, diff = npz[f"{name}/d"], npz[f"{name}/diff"]
            w = _weights(refs[name])
            if len(w) != len(d):
                raise EdgewriteError(f"the rounding file does not fit this model ({name} has another shape)")
            _, lo, hi = TYPES[e["type"]]
            q = np.clip(nearest(w, d, e["type"]).astype(np.int16) + diff, lo, hi)
            t.data[...] = pack(d, q, e["type"]).reshape(t.data.shape)
    out_r.data.flush()
    same = [name for name, t in got.items() if _digest(t) == entries[name]["sha256"]]
    differ = sorted(set(got) - set(same))
    if differ:
        log(
            f"rounding: {len(differ)} of {len(got)} tensors differ from the tuned file in some bytes "
            f"({', '.join(differ[:3])}): this CPU's arithmetic gave other F16 weights in a few places"
        )
    else:
        log(f"rounding: all {len(got)} tensors match the tuned file byte for byte")
    return {
        "file": path.name,
        "tensors_kept": sum(1 for e in entries.values() if e.get("kept")),
        "tensors_matching": len(same),
        "tensors_differing": differ,
        "tuned_sha256": meta["tuned_sha256"],
    }
