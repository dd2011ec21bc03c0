"""GGUF through llama.cpp's own tools: ``convert_hf_to_gguf.py`` (with the ``gguf-py`` and
``conversion/`` it ships) to F16, then ``llama_model_quantize`` via llama-cpp-python.

The converter is not in the llama-cpp-python wheel, only in its source distribution; it is fetched
once per llama-cpp-python version into EDGEWRITE_HOME (or taken from EDGEWRITE_LLAMA_CPP_SRC, a
llama.cpp checkout) and works offline from then on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError

TYPE_FOR_BITS = {2: "Q2_K", 3: "Q3_K_M", 4: "Q4_K_M", 5: "Q5_K_M", 6: "Q6_K", 8: "Q8_0", 16: "F16"}
_CONVERTER_PARTS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion", "gguf-py")
_FALLBACK = re.compile(r"(\d+) of (\d+) tensor\(s\) required fallback quantization")
_FALLBACK_WHY = re.compile(
    r"ncols\s+(\d+) not divisible by\s+(\d+) \(required for type\s+(\w+)\) -> falling back to\s+(\w+)"
)


def type_for_bits(bits: int) -> str:
    return TYPE_FOR_BITS[bits]


def bits_of_type(name: str) -> int | None:
    """The nominal bits per weight of a llama.cpp type: Q4_0 and IQ4_NL -> 4, Q8_0 -> 8, F16/BF16 -> 16."""
    m = re.match(r"(?:I?Q|TQ|B?F)(\d+)", name.upper())
    return int(m.group(1)) if m else None


def _ftype(name: str) -> int:
    import llama_cpp

    value = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name.upper()}", None)
    if value is None:
        known = sorted(
            n.removeprefix("LLAMA_FTYPE_MOSTLY_") for n in dir(llama_cpp) if n.startswith("LLAMA_FTYPE_MOSTLY_")
        )
        raise EdgewriteError(f"unknown llama.cpp type '{name}'; known: {', '.join(known)}")
    return value


def converter_dir() -> Path:
    """llama.cpp's converter matching the installed llama-cpp-python, fetched once."""
    if src := os.environ.get("EDGEWRITE_LLAMA_CPP_SRC"):
        path = Path(src)
        if not (path / "convert_hf_to_gguf.py").is_file():
            raise EdgewriteError(f"EDGEWRITE_LLAMA_CPP_SRC={src} has no convert_hf_to_gguf.py")
        return path
    from edgewrite.models import edgewrite_home

    try:
        version = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError as e:
        raise EdgewriteError("GGUF export needs llama-cpp-python: re-run ./install.sh") from e
    target = edgewrite_home() / "llama.cpp-converter" / version
    if all((target / part).exists() for part in _CONVERTER_PARTS):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-q",
            f"llama-cpp-python=={version}",
            "-d",
            tmp,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not sdists:
            raise EdgewriteError(
                f"could not fetch llama.cpp's converter (llama-cpp-python {version} source from PyPI): "
                "run once with PyPI reachable, or set EDGEWRITE_LLAMA_CPP_SRC to a llama.cpp checkout"
            )
        staging = target.with_name(version + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        prefix = f"{sdists[0].name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        with tarfile.open(sdists[0]) as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.name.startswith(prefix) and m.name[len(prefix) :].split("/")[0] in _CONVERTER_PARTS
            ]
            for m in members:
                m.name = m.name[len(prefix) :]
            tar.extractall(staging, members=members, filter="data")
        shutil.rmtree(target, ignore_errors=True)  # one fetched by an older edgewrite, without every part
        os.replace(staging, target)
    return target


def _converter_env(conv: Path) -> dict[str, str]:
    """The converters run with the gguf-py that came with them, not whatever gguf package is installed."""
    env = {**os.environ, "PYTHONPATH": str(conv / "gguf-py")}
    env.pop("NO_LOCAL_GGUF", None)
    return env


def _run(cmd: list[str], what: str, env: dict | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    log = done.stdout + done.stderr
    if done.returncode != 0:
        last = [line for line in log.strip().splitlines() if line.strip()][-1:] or ["(no output)"]
        raise EdgewriteError(f"{what} failed: {last[0]}")
    return log


def export(
    model_dir: Path,
    out: Path,
    gguf_type: str,
    imatrix: Path | None = None,
    overrides: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """HF folder -> F16 GGUF (llama.cpp's converter) -> ``gguf_type`` (llama.cpp's quantizer), optionally
    with an importance matrix (an ``.npz`` from :mod:`edgewrite.quantize.imatrix`) and per-tensor type
    overrides (``(regex, ggml type)``, like llama-quantize's ``--tensor-type``)."""
    gguf_type = gguf_type.upper()
    _ftype(gguf_type)
    conv = converter_dir()
    target = out / f"model-{gguf_type.lower()}.gguf"
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        f16 = target if gguf_type == "F16" else Path(scratch) / "model-f16.gguf"
        convert_f16(model_dir, f16, conv)
        log = "" if gguf_type == "F16" else quantize_file(f16, target, gguf_type, imatrix, overrides)
    details: dict[str, Any] = {"gguf_file": target.name, "type": gguf_type, "converter": str(conv)}
    if overrides:
        details["tensor_type_overrides"] = [f"{p}={t}" for p, t in overrides]
    if m := _FALLBACK.search(log):
        details["fallback_tensors"] = int(m.group(1))
        details["total_quantized_tensors"] = int(m.group(2))
        reasons = Counter(f"ncols {a} not divisible by {b} ({t} -> {f})" for a, b, t, f in _FALLBACK_WHY.findall(log))
        details["fallback_reasons"] = dict(reasons)
    else:
        details["fallback_tensors"] = 0
    details["tensor_types"] = tensor_types(target)
    return details


def convert_f16(model_dir: Path, f16: Path, conv: Path | None = None) -> None:
    """HF folder -> F16 GGUF with llama.cpp's converter."""
    conv = conv or converter_dir()
    cmd = [
        sys.executable,
        str(conv / "convert_hf_to_gguf.py"),
        str(model_dir),
        "--outtype",
        "f16",
        "--outfile",
        str(f16),
    ]
    _run(cmd, "llama.cpp convert_hf_to_gguf.py", _converter_env(conv))


def quantize_file(
    f16: Path,
    target: Path,
    gguf_type: str,
    imatrix: Path | None = None,
    overrides: list[tuple[str, str]] | None = None,
) -> str:
    """F16 GGUF -> ``gguf_type`` with llama.cpp's quantizer (in a child process); returns its log."""
    cmd = [sys.executable, "-m", "edgewrite.quantize.llama_quantize", str(f16), str(target)]
    cmd += [str(_ftype(gguf_type)), str(os.cpu_count() or 2)]
    cmd += [str(imatrix)] if imatrix else []
    cmd += [f"{pattern}={type_name}" for pattern, type_name in overrides or []]
    return _run(cmd, f"llama.cpp quantize to {gguf_type}")


def export_rounded(model_dir: Path, out: Path, rounding_file: Path, log=print) -> dict[str, Any]:
    """A tuned rounding shipped as data (:mod:`edgewrite.quantize.rounding`) applied to ``model_dir``:
    converter -> F16, quantizer -> the tuned file's types, then the tuned tensors rewritten in place."""
    from edgewrite.quantize import rounding

    meta = rounding.read_meta(rounding_file)
    gguf_type = meta["type"]
    target = out / f"model-{gguf_type.lower()}.gguf"
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        f16 = Path(scratch) / "model-f16.gguf"
        convert_f16(model_dir, f16)
        quantize_file(f16, target, gguf_type, overrides=rounding.overrides(meta))
        info = rounding.apply(rounding_file, f16, target, log)
    return {
        "gguf_file": target.name,
        "type": gguf_type,
        "rounding": "autoround",
        "rounding_file": info,
        "tensor_types": tensor_types(target),
    }


def main_type(path: Path) -> str | None:
    """The type most of a GGUF file's weight matrices are stored in (Q4_1 for the embedded model)."""
    types = Counter({k: v for k, v in tensor_types(path).items() if k not in ("F32", "F16", "BF16")})
    return types.most_common(1)[0][0] if types else None


def export_with_lora(
    adapter_dir: Path,
    base_dir: Path,
    base_gguf: Path | None,
    out: Path,
    gguf_type: str,
    imatrix: Path | None = None,
    overrides: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The base model as a GGUF of ``gguf_type`` plus the LoRA adapter in llama.cpp's LoRA GGUF format
    (``convert_lora_to_gguf.py``, f16), applied at run time instead of folded into the weights.

    When the base was itself loaded from a GGUF file of that type (the embedded default is Q4_1), that
    file is used as is: the quantized base is then exactly the model the adapter was trained on (tuning
    dequantizes it), and only the adapter's small matrices are added, at 16 bits. Folding the adapter in
    and quantizing again rounds the tuned weights a second time, and with them most of what tuning
    changed."""
    gguf_type = gguf_type.upper()
    if base_gguf is not None and main_type(base_gguf) == gguf_type and imatrix is None and not overrides:
        target = out / f"model-{gguf_type.lower()}.gguf"
        shutil.copyfile(base_gguf, target)
        details: dict[str, Any] = {
            "gguf_file": target.name,
            "type": gguf_type,
            "base_as_is": str(base_gguf),
            "fallback_tensors": 0,
            "tensor_types": tensor_types(target),
        }
    else:
        details = export(base_dir, out, gguf_type, imatrix=imatrix, overrides=overrides)
    conv = converter_dir()
    lora = out / "lora-f16.gguf"
    _run(
        [
            sys.executable,
            str(conv / "convert_lora_to_gguf.py"),
            "--base",
            str(base_dir),
            "--outtype",
            "f16",
            "--outfile",
            str(lora),
            str(adapter_dir),
        ],
        "llama.cpp convert_lora_to_gguf.py",
        _converter_env(conv),
    )
    details["lora_file"] = lora.name
    details["lora_tensors"] = sum(tensor_types(lora).values())
    return details


def tensor_types(path: Path) -> dict[str, int]:
    from edgewrite.quantize.gguf_reader import FastGGUFReader as GGUFReader

    reader = GGUFReader(str(path))
    return dict(Counter(t.tensor_type.name for t in reader.tensors))


def read_back(out: Path, details: dict[str, Any]) -> dict[str, Any]:
    """The chat template and end-of-turn ids as stored in the GGUF file itself."""
    from edgewrite.quantize.gguf_reader import FastGGUFReader as GGUFReader

    reader = GGUFReader(str(out / details["gguf_file"]))

    def field(name: str) -> Any:
        f = reader.get_field(name)
        return None if f is None else f.contents()

    stops = [v for v in (field("tokenizer.ggml.eos_token_id"), field("tokenizer.ggml.eot_token_id")) if v is not None]
    return {
        "chat_template": field("tokenizer.chat_template"),
        "stop_ids": stops,
        "architecture": field("general.architecture"),
    }
