"""How a GGUF export puts each weight on its grid: one setting, written the same way on the command line
(`quantize --rounding`), in a recipe (`quantize: [{rounding: ...}]`) and in the export's manifest
(``rounding``), so a combination that means nothing cannot be written at all.

    nearest            llama.cpp's round-to-nearest (the default)
    imatrix            nearest, weighted by an importance matrix from the model's own training rows
    imatrix:FILE       nearest, weighted by that importance matrix (an imatrix.npz of another export)
    autoround[:STEPS]  AutoRound's tuned rounding, STEPS per decoder block (default 200) on training rows
    FILE               a file kept from an earlier export: a tuned rounding (rounding.npz, applied without
                       AutoRound or training rows) or an importance matrix (imatrix.npz)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgewrite.errors import EdgewriteError

AUTOROUND_STEPS = 200
FORMS = "nearest, imatrix, imatrix:FILE, autoround[:STEPS] or FILE (a rounding.npz or imatrix.npz)"
Method = Literal["nearest", "imatrix", "autoround", "tuned"]


@dataclass(frozen=True)
class Rounding:
    method: Method = "nearest"
    steps: int = 0  # autoround
    file: Path | None = None  # imatrix (given) or tuned

    @classmethod
    def parse(cls, text: str | Rounding | None) -> Rounding:
        """The setting from its written form; one line naming the forms when it is none of them."""
        if isinstance(text, Rounding):
            return text
        if text is None or str(text).strip() in ("", "nearest"):
            return cls()
        text = str(text).strip()
        name, _, arg = text.partition(":")
        if name == "imatrix":
            return cls("imatrix", file=Path(arg)) if arg else cls("imatrix")
        if name == "autoround":
            if not arg:
                return cls("autoround", steps=AUTOROUND_STEPS)
            if not arg.isdigit() or int(arg) < 1:
                raise EdgewriteError(f"--rounding {text}: autoround:STEPS takes a positive number of steps")
            return cls("autoround", steps=int(arg))
        path = Path(text)
        if path.is_file():
            return cls("tuned", file=path) if _is_tuned_rounding(path) else cls("imatrix", file=path)
        if path.exists():
            raise EdgewriteError(f"--rounding {text} is a folder; give the file in it (rounding.npz or imatrix.npz)")
        raise EdgewriteError(f"--rounding {text}: not a rounding and no such file; use {FORMS}")

    @classmethod
    def parse_recorded(cls, text: str) -> Rounding:
        """A manifest's ``rounding`` (files by name, which need not exist here)."""
        name, _, arg = text.partition(":")
        if name in ("nearest", "imatrix", "autoround"):
            return cls.parse(text)
        return cls("tuned", file=Path(text))

    def __str__(self) -> str:
        if self.method == "autoround":
            return "autoround" if self.steps == AUTOROUND_STEPS else f"autoround:{self.steps}"
        if self.method == "imatrix":
            return f"imatrix:{self.file}" if self.file else "imatrix"
        return str(self.file) if self.method == "tuned" else "nearest"

    @property
    def needs_calibration(self) -> bool:
        """Whether it reads the model's training rows (computing a matrix, tuning with AutoRound)."""
        return (self.method == "imatrix" and self.file is None) or self.method == "autoround"

    def check(self, fmt: str, runtime_lora: bool = False, tensor_types: list[str] | None = None) -> None:
        """What the rest of the command asks for must leave this rounding meaning something."""
        if self.method == "nearest":
            return
        if fmt != "gguf":
            raise EdgewriteError(f"--rounding {self} is how llama.cpp's GGUF types are rounded; it needs --format gguf")
        if runtime_lora and self.method != "imatrix":
            raise EdgewriteError(
                f"--rounding {self} tunes the merged model; --runtime-lora quantizes the untuned base "
                "(with nearest or imatrix:FILE rounding)"
            )
        if runtime_lora and self.file is None:
            raise EdgewriteError("--runtime-lora quantizes the untuned base: give --rounding imatrix:FILE, not imatrix")
        if self.method == "tuned" and tensor_types:
            raise EdgewriteError(
                f"--rounding {self} already fixes every tensor's type; leave out --tensor-type "
                "(a rounding file keeps the layers its export lifted)"
            )

    def manifest_text(self) -> str:
        """The form written in an export's manifest: a given file by its name only (where it came from is
        the machine's business; its sha256 is in the settings)."""
        if self.method == "tuned" and self.file:
            return self.file.name
        if self.method == "imatrix" and self.file:
            return f"imatrix:{self.file.name}"
        return str(self)


def _is_tuned_rounding(path: Path) -> bool:
    """A tuned rounding file holds a ``meta`` header; an importance matrix holds only per-tensor values."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            return "meta" in npz.files
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise EdgewriteError(f"--rounding {path} is neither a rounding.npz nor an imatrix.npz ({e})") from e


def from_manifest(manifest: dict[str, Any]) -> Rounding | None:
    """The rounding a GGUF export was made with, as its manifest says (older exports: from their settings);
    None for other formats."""
    if manifest.get("format") != "gguf":
        return None
    settings = manifest.get("settings") or {}
    if manifest.get("rounding"):
        return Rounding.parse_recorded(manifest["rounding"])
    if settings.get("rounding_sha256"):
        return Rounding("tuned", file=Path("rounding.npz"))
    if settings.get("rounding") == "autoround":
        return Rounding("autoround", steps=int(settings.get("autoround_iters") or AUTOROUND_STEPS))
    if settings.get("imatrix_sha256"):
        return Rounding("imatrix", file=Path("imatrix.npz"))
    if settings.get("imatrix_rows"):
        return Rounding("imatrix")
    return Rounding()
