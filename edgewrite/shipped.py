"""The shipped tuned ``writing`` model and which model commands use when none is named.

``writing`` names the shipped model in the form it is served and benched: the adapter folded into the
embedded base once, then exported once to its serving format (4-bit GGUF, rounded as AutoRound tuned it),
both into the cache. ``writing:fp32`` names the fp32 merge itself (for eval against the export, or to
quantize it another way). The default model of assist, serve, generate, lsp and check is ``writing``
until the user picks another with ``edgewrite models --use REF``; no other command changes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from edgewrite.errors import EdgewriteError

WRITING_FP32 = "writing:fp32"
_CHOICE = "default.json"


def merged_writing() -> Path:
    """The shipped adapter folded into the embedded base (fp32), once, into the cache."""
    from edgewrite.artifacts import read_manifest
    from edgewrite.merge import merge
    from edgewrite.models import WRITING, check_causal_lm, edgewrite_home, shipped_adapter

    adapter = shipped_adapter(WRITING)
    out = edgewrite_home() / "models" / f"{WRITING}-{read_manifest(adapter)['fingerprint'][:8]}"
    merge(adapter, out, force=True)
    return check_causal_lm(out, WRITING_FP32).path


def served_artifact(log: Callable[[str], None] | None = None) -> Path:
    """The shipped model's serving export (made on first use, then cached)."""
    from edgewrite.artifacts import read_manifest
    from edgewrite.models import WRITING, shipped_adapter
    from edgewrite.quantize import quantize

    folder = shipped_adapter(WRITING)
    serve = read_manifest(folder).get("serve") or {"format": "gguf", "bits": 4}
    merged = merged_writing()
    if log:
        kind = serve.get("type") or f"{serve['bits']}-bit"
        kind += " with its importance matrix" if serve.get("imatrix") else ""
        kind += ", rounded as AutoRound tuned it" if serve.get("rounding") else ""
        log(f"using the shipped '{WRITING}' model ({serve['format']} {kind}; made once, then cached)")
    # an importance matrix or a tuned rounding that shipped with the adapter rounds the user's export the way
    # the benched one was
    from edgewrite.quantize.settings import Rounding

    rounding = Rounding()
    if serve.get("rounding"):
        rounding = Rounding("tuned", file=folder / serve["rounding"])
    elif serve.get("imatrix"):
        rounding = Rounding("imatrix", file=folder / serve["imatrix"])
    path, _ = quantize(
        str(merged),
        serve["format"],
        serve["bits"],
        gguf_type=serve.get("type"),
        rounding=rounding,
        force=True,
        log=log or (lambda line: None),  # never stdout: that is where the edited text goes
    )
    return path


def artifact_path(ref: str, log: Callable[[str], None] | None = None) -> Path:
    """The folder a model reference names: 'default', 'gemma3-270m' (untuned), 'writing' (as served),
    'writing:fp32', a .gguf file (its dequantized copy), or a path."""
    from edgewrite.models import DEFAULT, GEMMA, WRITING, resolve_model

    if Path(ref).is_file() and ref.endswith(".gguf"):
        return resolve_model(ref).path
    if Path(ref).exists():
        return Path(ref)
    if ref in (DEFAULT, GEMMA):
        return resolve_model(ref).path
    if ref == WRITING:
        return served_artifact(log)
    if ref == WRITING_FP32:
        return merged_writing()
    return Path(ref)


def chosen_default(device: str = "cpu") -> str | None:
    """The reference the user chose with `edgewrite models --use` for ``device`` (None: not chosen)."""
    from edgewrite.models import edgewrite_home

    path = edgewrite_home() / _CHOICE
    try:
        pick = json.loads(path.read_text()).get(device) if path.is_file() else None
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return None
    return pick if isinstance(pick, str) else None


def choose_default(ref: str | None, device: str = "cpu") -> None:
    """Make ``ref`` the default model on ``device`` (None: back to the shipped model). A folder must hold an
    artifact; the named models must exist in this installation."""
    from edgewrite.models import DEFAULT, SHIPPED_DIR, WRITING, edgewrite_home

    if ref is not None:
        if ref in (WRITING, WRITING_FP32) and not (SHIPPED_DIR / WRITING).is_dir():
            raise EdgewriteError(f"'{ref}': the shipped model is missing from this installation; reinstall edgewrite")
        if ref not in (DEFAULT, WRITING, WRITING_FP32):
            folder = Path(ref).expanduser().resolve()
            if not (folder / "manifest.json").is_file():
                raise EdgewriteError(f"{ref} is not an edgewrite artifact (no manifest.json); give a model folder")
            ref = str(folder)
    home = edgewrite_home()
    home.mkdir(parents=True, exist_ok=True)
    path = home / _CHOICE
    choices = {}
    if path.is_file():
        try:
            choices = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            choices = {}
    choices = {k: v for k, v in (choices if isinstance(choices, dict) else {}).items() if k != device}
    if ref is not None:
        choices[device] = ref
    tmp = home / f"{_CHOICE}.tmp"
    tmp.write_text(json.dumps(choices, indent=2) + "\n")
    tmp.replace(path)


def default_artifact(device: str = "cpu", log: Callable[[str], None] | None = None) -> Path:
    """What assist, serve, generate, lsp and check use without --model: the model chosen with
    `edgewrite models --use`, else the shipped `writing` model as served, else the embedded base model."""
    from edgewrite.models import DEFAULT, SHIPPED_DIR, WRITING

    pick = chosen_default(device)
    if pick is not None:
        path = artifact_path(pick, log)
        if path.exists():
            return path
        raise EdgewriteError(
            f"the default model {pick} (chosen with `edgewrite models --use`) is gone; "
            "choose another, or `edgewrite models --use writing`"
        )
    if not (SHIPPED_DIR / WRITING).is_dir():
        return artifact_path(DEFAULT)
    return served_artifact(log)
