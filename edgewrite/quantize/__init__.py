"""``edgewrite quantize``: a merged model to GGUF (llama.cpp), GPTQ (GPT-QModel) or ONNX (onnxruntime-genai).

Every output is an artifact folder with a manifest, written atomically, that also carries the
model's tokenizer files and chat template (the prompt builder reads them) and passed a read-back
check: the exported file's chat template and end-of-turn token are the merged model's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from edgewrite.artifacts import existing_matches, fingerprint, read_manifest, sha256_file, staged_dir, write_manifest
from edgewrite.errors import EdgewriteError
from edgewrite.quantize.calibration import calibration_rows, calibration_texts
from edgewrite.quantize.settings import Rounding

DEFAULT_FORMAT = "gguf"
BITS = {"gguf": (2, 3, 4, 5, 6, 8, 16), "gptq": (2, 3, 4, 8), "onnx": (4, 16, 32)}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)


# Peak memory per parameter of each exporter, measured by benchmarks/scale.py (1.17 B parameters, AMD EPYC):
# onnxruntime-genai's builder holds the model in fp32 and more (8.4 GB), GPT-QModel on CPU a layer at a time
# in fp32 plus the model; llama.cpp's converter reads lazily and its quantizer streams (1.0 GB).
RAM_PER_PARAM = {"onnx": 7.5, "gptq": 4.5}


def model_params(model_dir: Path) -> int:
    """Parameters of a safetensors model, from the files' headers (nothing is loaded)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(f), "np") as st:
            for name in st.keys():  # noqa: SIM118 - safe_open is not a mapping
                n = 1
                for d in st.get_slice(name).get_shape():
                    n *= d
                total += n
    return total


def preflight(model_dir: Path, fmt: str, bits: int, out: Path) -> None:
    """Refuse, before any work, an export this machine cannot hold: its memory (ONNX, GPTQ) or its disk
    (GGUF converts to F16 first), with one line saying how much and what to do."""
    import psutil

    params = model_params(model_dir)
    if not params:
        return
    need_ram = RAM_PER_PARAM.get(fmt, 0) * params
    have_ram = psutil.virtual_memory().available
    if need_ram > have_ram:
        raise EdgewriteError(
            f"exporting this {params / 1e9:.1f} B-parameter model to {fmt} needs about {need_ram / 2**30:.0f} GiB "
            f"of memory, this machine has {have_ram / 2**30:.0f} GiB free; export GGUF instead (it streams), or run "
            "this on a bigger machine"
        )
    need_disk = params * (2 if fmt == "gguf" else 0) + params * bits / 8 * 1.15
    folder = out.parent if out.parent.exists() else Path(".")
    have_disk = shutil.disk_usage(folder).free
    if need_disk > have_disk:
        raise EdgewriteError(
            f"the {fmt} export needs about {need_disk / 2**30:.1f} GiB on disk (an F16 copy first for GGUF), "
            f"{folder} has {have_disk / 2**30:.1f} GiB free; give --out on a larger disk"
        )


def check_bits(fmt: str, bits: int) -> None:
    if fmt not in BITS:
        raise EdgewriteError(f"unknown format '{fmt}'; formats: {', '.join(BITS)}")
    if bits not in BITS[fmt]:
        raise EdgewriteError(f"--bits {bits} is not supported for {fmt}; supported: {', '.join(map(str, BITS[fmt]))}")


def source_model(model: str) -> tuple[Path, dict[str, Any]]:
    """The folder to quantize and what is known about it (its manifest, or one derived from it)."""
    from edgewrite.models import check_causal_lm, resolve_model

    path = Path(model)
    if path.is_file():
        raise EdgewriteError(f"{model} is a file; quantize takes a merged model folder (or 'default')")
    if path.is_dir() and (path / "manifest.json").is_file():
        manifest = json.loads((path / "manifest.json").read_text())
        if manifest.get("kind") not in ("merged", "base", "full"):
            raise EdgewriteError(
                f"{model} is a '{manifest.get('kind')}' artifact; quantize takes a merged full model "
                + ("(run `edgewrite merge` first)" if manifest.get("kind") == "adapter" else "")
            )
        check_causal_lm(path, model)
        return path, manifest
    info = resolve_model(model)
    if (info.path / "manifest.json").is_file():
        return info.path, json.loads((info.path / "manifest.json").read_text())
    from transformers import AutoTokenizer

    from edgewrite.tasks import stop_text

    tok = AutoTokenizer.from_pretrained(info.path)
    return info.path, {
        "kind": "folder",
        "stop_token": stop_text(tok),
        "prompt_style": "chat",
        "fingerprint": fingerprint(str(info.path.resolve())),
    }


def lora_source(model: str) -> dict[str, Any]:
    """For --runtime-lora: the LoRA adapter behind ``model`` (a tune folder, the shipped ``writing``
    adapter, or a model merged from an adapter), its base model's folder, and the GGUF file that base
    was loaded from, if any (with its type and nominal bits)."""
    from edgewrite.models import SHIPPED_DIR, WRITING, edgewrite_home, resolve_model, shipped_adapter
    from edgewrite.quantize import gguf

    path = Path(model)
    if model == WRITING and not path.exists():
        adapter_dir = shipped_adapter(WRITING)
    elif path.is_dir() and (path / "manifest.json").is_file():
        found = read_manifest(path)
        parent = found.get("parent") or {}
        if found.get("kind") == "adapter":
            adapter_dir = path
        elif found.get("kind") == "merged" and parent.get("kind") == "adapter" and Path(parent["path"]).is_dir():
            adapter_dir = Path(parent["path"])
        else:
            raise EdgewriteError(
                f"--runtime-lora needs a LoRA adapter: {model} is a '{found.get('kind')}' artifact, not a merge "
                "of an adapter that is still on disk; give the tune folder, or leave out --runtime-lora"
            )
    else:
        raise EdgewriteError(
            f"--runtime-lora needs a LoRA adapter: give a tune folder, 'writing', or a model merged from an adapter "
            f"(not '{model}')"
        )
    adapter = read_manifest(adapter_dir, kinds=("adapter",))
    base = resolve_model(adapter["base_model"]["ref"])
    known = base.path / "manifest.json"
    base_manifest = json.loads(known.read_text()) if known.is_file() else {}
    source = Path((base_manifest.get("source") or {}).get("gguf") or "")
    base_gguf = source if source.suffix == ".gguf" and source.is_file() else None
    gguf_type = gguf.main_type(base_gguf) if base_gguf else None

    # exports go beside the adapter, except for the one shipped inside the package: into the cache, named
    # like its merge (writing-<fingerprint>)
    out_like = adapter_dir
    if adapter_dir.resolve().is_relative_to(SHIPPED_DIR.resolve()):
        out_like = edgewrite_home() / "models" / f"{adapter_dir.name}-{adapter['fingerprint'][:8]}"
    return {
        "adapter_dir": adapter_dir,
        "adapter": adapter,
        "base_dir": base.path,
        "base_gguf": base_gguf,
        "gguf_type": gguf_type,
        "bits": gguf.bits_of_type(gguf_type) if gguf_type else None,
        "out_like": out_like,
    }


def default_out(model_dir: Path, fmt: str, label: str) -> Path:
    """Beside the model: runs/x/merged -> runs/x/gguf-q4_k_m; a cached model keeps its name as a prefix."""
    prefix = "" if model_dir.name in ("merged", "adapter") else f"{model_dir.name}-"
    return model_dir.parent / f"{prefix}{fmt}-{label.lower()}"


def quantize(
    model: str,
    fmt: str = DEFAULT_FORMAT,
    bits: int = 4,
    out: Path | None = None,
    gguf_type: str | None = None,
    group_size: int | None = None,
    samples: int = 256,
    calibration: Path | None = None,
    device: str = "cpu",
    force: bool = False,
    tensor_types: list[str] | None = None,
    runtime_lora: bool = False,
    rounding: Rounding | str | None = None,
    log=print,
) -> tuple[Path, dict[str, Any]]:
    """``rounding``: how a GGUF export puts weights on its grid (`quantize.settings.Rounding`, or its
    written form: nearest, imatrix, imatrix:FILE, autoround[:STEPS], FILE)."""
    how = Rounding.parse(rounding)
    how.check(fmt, runtime_lora, tensor_types)
    autoround = how.steps if how.method == "autoround" else 0
    imatrix: bool | Path = (how.file or True) if how.method == "imatrix" else False
    tuned_file = how.file if how.method == "tuned" else None
    rounding_meta: dict[str, Any] = {}
    if tuned_file is not None:
        from edgewrite.quantize.rounding import read_meta

        rounding_meta = read_meta(tuned_file)
        if gguf_type is not None and gguf_type.upper() != rounding_meta["type"]:
            raise EdgewriteError(
                f"{tuned_file} is a {rounding_meta['type']} rounding; leave out --type, "
                f"or give --type {rounding_meta['type']}"
            )
        gguf_type = rounding_meta["type"]
    if runtime_lora and fmt != "gguf":
        raise EdgewriteError("--runtime-lora keeps the adapter apart for llama.cpp; it needs --format gguf")
    if gguf_type is None:
        check_bits(fmt, bits)
    elif fmt != "gguf":
        raise EdgewriteError("--type names a llama.cpp quantization type; it only applies to --format gguf")
    if tensor_types and fmt != "gguf":
        raise EdgewriteError("--tensor-type is a llama.cpp quantizer setting; it needs --format gguf")
    overrides = []
    if tensor_types:
        from edgewrite.quantize.imatrix import parse_tensor_types

        overrides = parse_tensor_types(tensor_types)
        if autoround and any(t != "Q8_0" for _, t in overrides):
            raise EdgewriteError(
                "with --rounding autoround, --tensor-type lifts layers to Q8_0 (what a rounding file keeps): "
                f"not {', '.join(sorted({t for _, t in overrides if t != 'Q8_0'}))}"
            )
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise EdgewriteError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    lora = lora_source(model) if runtime_lora else None
    model_dir, parent = (lora["base_dir"], lora["adapter"]) if lora else source_model(model)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    from edgewrite.tasks import style_of

    stop = parent.get("stop_token") or tokenizer.eos_token
    stop_id = tokenizer.convert_tokens_to_ids(stop)
    if rounding_meta and rounding_meta.get("model_fingerprint") != parent.get("fingerprint"):
        raise EdgewriteError(
            f"{tuned_file} was tuned for another model (fingerprint {rounding_meta.get('model_fingerprint')}, "
            f"{model} is {parent.get('fingerprint')}); apply it to the model it was made from"
        )

    if fmt == "gguf":
        from edgewrite.quantize import gguf as backend

        # --runtime-lora on a base loaded from a GGUF file at these bits: that file, as is
        as_is = lora["gguf_type"] if lora and lora["bits"] == bits else None
        label = gguf_type or as_is or backend.type_for_bits(bits)
        settings: dict[str, Any] = {"type": label.upper()}
        if isinstance(imatrix, Path):
            from edgewrite.quantize.imatrix import load

            load(imatrix)  # a file that is not an importance matrix is refused before anything is written
            settings["imatrix_sha256"] = sha256_file(imatrix)
            label += "-imat"
        elif imatrix:
            settings["imatrix_rows"] = samples
            label += "-imat"
        if overrides:
            settings["tensor_types"] = [f"{p}={t}" for p, t in overrides]
            label += "-tt"
        if lora:
            settings["runtime_lora"] = True
            label += "-lora"
        if autoround:
            from edgewrite.quantize.autoround import scheme_for

            scheme_for(settings["type"])  # a type AutoRound cannot write is refused before anything is written
            settings.update(rounding="autoround", autoround_iters=autoround, calibration_rows=samples)
            label += "-ar"
        if rounding_meta:
            settings.update(rounding="autoround", rounding_sha256=sha256_file(tuned_file))
            label += "-ar"
    elif fmt == "gptq":
        from edgewrite.quantize import gptq as backend

        group_size = group_size or backend.default_group_size(model_dir)
        label = f"{bits}bit-g{group_size}"
        settings = {"bits": bits, "group_size": group_size, "samples": samples}
    else:
        from edgewrite.quantize import onnx as backend

        label = {4: "int4", 16: "fp16", 32: "fp32"}[bits]
        settings = {"precision": label, "execution_provider": device}
    if fmt == "gguf":
        backend._ftype(settings["type"])  # an unknown llama.cpp type is refused before anything is written
    out = out or default_out(lora["out_like"] if lora else model_dir, fmt, label)
    fp = fingerprint({"parent": parent.get("fingerprint"), "format": fmt, **settings})
    if existing_matches(out, fp, force):
        return out, json.loads((out / "manifest.json").read_text())
    preflight(model_dir, fmt, bits, out)

    compute = imatrix is True
    texts: list[
        str
    ] = []  # calibration text (training rows as tuned on) for --rounding imatrix and --rounding autoround
    if compute or autoround:
        rows, calibration_source = calibration_rows(parent, calibration, samples)
        texts = calibration_texts(rows, tokenizer, style_of(parent, tokenizer), stop)
    with staged_dir(out) as tmp:
        if fmt == "gguf":
            matrix = tmp / "imatrix.npz" if imatrix else None
            if compute:
                from edgewrite.quantize import imatrix as imx

                values, tokens = imx.collect(model_dir, texts, tokenizer, log=log)
                imx.save(values, matrix)
                imatrix_info = {"file": matrix.name, "rows": len(texts), "tokens": tokens, "from": calibration_source}
            elif matrix:
                shutil.copy2(imatrix, matrix)
                imatrix_info = {"file": matrix.name, "from": str(imatrix), "sha256": settings["imatrix_sha256"]}
            if autoround:
                from edgewrite.quantize import autoround as tuned

                details = tuned.export(
                    model_dir,
                    tmp,
                    settings["type"],
                    texts,
                    tokenizer,
                    autoround,
                    device,
                    log,
                    parent.get("fingerprint"),
                    overrides,
                )
                details["calibration_source"] = calibration_source
            elif tuned_file is not None:
                details = backend.export_rounded(model_dir, tmp, tuned_file, log)
            elif lora:
                details = backend.export_with_lora(
                    lora["adapter_dir"], model_dir, lora["base_gguf"], tmp, settings["type"], matrix, overrides
                )
            else:
                details = backend.export(model_dir, tmp, settings["type"], imatrix=matrix, overrides=overrides)
            if matrix:
                details["imatrix"] = imatrix_info
        elif fmt == "gptq":
            rows, calibration_source = calibration_rows(parent, calibration, samples)
            details = backend.export(
                model_dir, tmp, bits, group_size, rows, tokenizer, style_of(parent, tokenizer), stop, device
            )
            details["calibration_source"] = calibration_source
        else:
            details = backend.export(model_dir, tmp, label, device)
        for name in TOKENIZER_FILES:
            if (model_dir / name).is_file() and not (tmp / name).exists():
                shutil.copy2(model_dir / name, tmp / name)
        readback = backend.read_back(tmp, details)
        _check_readback(readback, tokenizer.chat_template or "", stop, stop_id, fmt)
        manifest = write_manifest(
            tmp,
            "quantized",
            fingerprint=fp,
            format=fmt,
            bits=bits if gguf_type is None else backend.bits_of_type(label),
            settings=settings,
            details=details,
            parent={
                "path": str(lora["adapter_dir"] if lora else model_dir),
                "kind": parent.get("kind"),
                "fingerprint": parent.get("fingerprint"),
            },
            base_model=parent.get("base_model") or {"ref": model},
            data=parent.get("data"),
            prompt_style=style_of(parent, tokenizer),
            stop_token=stop,
            chat_template_sha256=fingerprint(tokenizer.chat_template or ""),
            readback={k: v for k, v in readback.items() if k != "chat_template"},
            **({"rounding": how.manifest_text()} if fmt == "gguf" else {}),
            **({"custom_tasks": parent["custom_tasks"]} if parent.get("custom_tasks") else {}),
        )
    return out, manifest


def _check_readback(readback: dict, template: str, stop: str, stop_id: int, fmt: str) -> None:
    got = readback.get("chat_template")
    if template and (got is None or got.strip() != template.strip()):
        what = "lost" if got is None else "changed"
        raise EdgewriteError(f"the {fmt} export {what} the chat template; the artifact was not kept")
    stops = readback.get("stop_ids") or []
    if stop_id not in stops:
        raise EdgewriteError(
            f"the {fmt} export does not stop at {stop!r} (id {stop_id}; it stops at {stops}); the artifact was not kept"
        )
