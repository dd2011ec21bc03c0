"""``edgewrite export ollama``: a Modelfile for a GGUF artifact that stops where the model stops.

Ollama templates are Go templates, not Jinja, so the chat template is recognized by family (ChatML,
Llama 3, Alpaca prompt style) and written in Go template form; the default system prompt and the
stop token come from the artifact. An unknown template family is refused rather than guessed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edgewrite.artifacts import read_manifest
from edgewrite.errors import EdgewriteError

CHATML = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
LLAMA3 = (
    "<|begin_of_text|>{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
ALPACA = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{{ .Prompt }}\n\n### Response:\n"
)


def template_family(chat_template: str, style: str) -> str:
    if style == "alpaca":
        return "alpaca"
    if "<|im_start|>" in chat_template:
        return "chatml"
    if "<|start_header_id|>" in chat_template:
        return "llama3"
    raise EdgewriteError("this chat template is neither ChatML nor Llama 3; write the Modelfile TEMPLATE by hand")


def default_system(tokenizer: Any) -> str | None:
    """The system prompt the chat template inserts when a conversation has none."""
    marker = "USER-MARKER-7731"
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False)
    for start, end in (("<|im_start|>system\n", "<|im_end|>"), ("<|end_header_id|>\n\n", "<|eot_id|>")):
        head = rendered.split(marker)[0]
        if start in head:
            return head.split(start, 1)[1].split(end, 1)[0] or None
    return None


def ollama_modelfile(artifact: Path, out: Path) -> Path:
    manifest = read_manifest(artifact)
    if manifest.get("format") != "gguf":
        raise EdgewriteError(
            f"{artifact} is not a GGUF artifact; run `edgewrite quantize {artifact} -f gguf` on the merged model first"
        )
    from transformers import AutoTokenizer

    from edgewrite.tasks import style_of

    tokenizer = AutoTokenizer.from_pretrained(artifact)
    style = style_of(manifest, tokenizer)
    family = template_family(tokenizer.chat_template or "", style)
    template = {"chatml": CHATML, "llama3": LLAMA3, "alpaca": ALPACA}[family]
    gguf = (artifact / manifest["details"]["gguf_file"]).resolve()
    lines = [
        f"# Made by edgewrite from {artifact} ({family} template, stop token {manifest['stop_token']!r})",
        f"FROM {os.path.relpath(gguf, out.resolve())}",
        f'TEMPLATE """{template}"""',
    ]
    if lora := manifest["details"].get("lora_file"):  # an adapter kept apart: Ollama applies it at run time
        lines.insert(2, f"ADAPTER {os.path.relpath((artifact / lora).resolve(), out.resolve())}")
    system = default_system(tokenizer) if family != "alpaca" else None
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines += [
        f"PARAMETER stop {json.dumps(manifest['stop_token'])}",
        "PARAMETER temperature 0",
        "PARAMETER num_ctx 2048",
        "",
    ]
    path = out / "Modelfile"
    tmp = out / ".Modelfile.tmp"
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp.write_text("\n".join(lines), encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise EdgewriteError(f"could not write {path} ({e.strerror}); free disk space or choose another --out") from e
    return path
