"""The bad-input matrix: for every command, the inputs a user gets wrong. Each case must end with exit
code 2, exactly one line on stderr that names the problem (and the fix), no traceback, and no folder
left behind that a later command would trust (a manifest.json or a .partial folder).

Cases run in-process through the CLI's entry point (edgewrite.cli.main), which is what the console
script calls; an exception that escapes it fails the case with its traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from edgewrite.artifacts import write_manifest

ROOT_FS_READ_ONLY = Path("/sys/edgewrite-bad-input")
SHARED_DATA = str(
    Path(__file__).resolve().parents[3] / "shared" / "data"
)  # sysfs is mounted read-only: writes fail with EROFS


def _read_only_available() -> bool:
    try:
        ROOT_FS_READ_ONLY.mkdir()
    except OSError:
        return True
    shutil.rmtree(ROOT_FS_READ_ONLY, ignore_errors=True)
    return False


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A folder of wrong inputs (and one right model, for the cases about other arguments)."""
    w = tmp_path_factory.mktemp("bad")
    (w / "empty.txt").write_text("")
    (w / "empty_dir").mkdir()
    (w / "binary.bin").write_bytes(b"\x00\x01\x02\xff" * 64)
    (w / "latin1.txt").write_bytes("caf\xe9 au lait.".encode("latin-1"))
    (w / "doc.md").write_text("She go to school.\n")
    data = w / "jsonl"
    (data / "set").mkdir(parents=True)
    rows = {
        "malformed.jsonl": '{"task": "grammar", "source": "a", "references": ["b"]}\n{not json\n',
        "missing_keys.jsonl": '{"task": "grammar", "source": "a"}\n',
        "wrong_types.jsonl": '{"task": "grammar", "source": 5, "references": ["b"]}\n',
        "null_source.jsonl": '{"task": "grammar", "source": null, "references": ["b"]}\n',
        "bad_refs.jsonl": '{"task": "grammar", "source": "a", "references": "b"}\n',
        "unknown_task.jsonl": '{"task": "poetry", "source": "a", "references": ["b"]}\n',
    }
    for name, text in rows.items():
        (data / "set" / name).write_text(text)
    (data / "set" / "binary.jsonl").write_bytes(b"\x00\xff\xfe" * 50)
    for name, text in {
        "unknown_key.yaml": "name: x\ntrain:\n  speed: fast\n",
        "wrong_type.yaml": "name: x\ntrain:\n  lr: fast\n",
        "invalid.yaml": "name: x\ntrain: [unclosed\n",
        "list.yaml": "- a\n- b\n",
        "ok.yaml": "name: x\n",
        "eval_steps.yaml": "name: x\ndata:\n  data_dir: " + str(data) + "\ntrain:\n  max_steps: 2\n  eval_steps: 9\n",
    }.items():
        (w / name).write_text(text)
    (w / "binary.yaml").write_bytes(b"\x00\xff\xfe")
    gpt2 = w / "gpt2"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    (gpt2 / "model.safetensors").write_bytes(b"")
    for kind in ("adapter", "data"):
        (w / kind).mkdir()
        write_manifest(w / kind, kind, fingerprint=kind, format="jsonl" if kind == "data" else "peft")
    (w / "bench").mkdir()
    (w / "bench" / "bench.json").write_text(json.dumps({"schema": "edgewrite.bench/2", "cells": []}))
    (w / "bench_old").mkdir()
    (w / "bench_old" / "bench.json").write_text(json.dumps({"schema": "edgewrite.bench/1", "cells": []}))
    (w / "bench_shape").mkdir()
    (w / "bench_shape" / "bench.json").write_text(json.dumps([1, 2, 3]))
    (w / "bench_bad").mkdir()
    (w / "bench_bad" / "bench.json").write_text("{not json")
    (w / "manifest_shape").mkdir()
    (w / "manifest_shape" / "manifest.json").write_text("[1, 2]")
    (w / "no_weights").mkdir()
    write_manifest(w / "no_weights", "merged", fingerprint="m", format="safetensors")
    (w / "other_run").mkdir()
    write_manifest(w / "other_run", "data", fingerprint="someone-else")
    tiny = w / "tiny"
    shutil.copytree(tiny_model_dir, tiny)
    write_manifest(tiny, "base", fingerprint="tiny", format="safetensors", stop_token="<|im_end|>", prompt_style="chat")
    return w


def _cases() -> list[tuple[str, list[str], str]]:
    """(id, argv with {w} for the inputs folder, a fragment the one error line must contain)."""
    ro = str(ROOT_FS_READ_ONLY / "out")
    return [
        # data
        ("data-missing-data-dir", ["data", "--out", "{w}/o", "--data-dir", "{w}/nope"], "does not exist"),
        ("data-empty-data-dir", ["data", "--out", "{w}/o", "--data-dir", "{w}/empty_dir"], "holds no .jsonl"),
        ("data-unknown-task", ["data", "--out", "{w}/o", "--tasks", "poetry"], "unknown task 'poetry'"),
        ("data-set-unknown-key", ["data", "--out", "{w}/o", "--set", "data.speed=1"], "has no key 'speed'"),
        ("data-set-bad-value", ["data", "--out", "{w}/o", "--set", "data.dev_fraction=2"], "dev_fraction"),
        ("data-set-no-equals", ["data", "--out", "{w}/o", "--set", "data.general"], "key=value"),
        ("data-recipe-unknown-key", ["data", "--out", "{w}/o", "--recipe", "{w}/unknown_key.yaml"], "unknown key"),
        ("data-recipe-wrong-type", ["data", "--out", "{w}/o", "--recipe", "{w}/wrong_type.yaml"], "train.lr"),
        ("data-recipe-invalid-yaml", ["data", "--out", "{w}/o", "--recipe", "{w}/invalid.yaml"], "not valid YAML"),
        ("data-recipe-binary", ["data", "--out", "{w}/o", "--recipe", "{w}/binary.yaml"], "recipe"),
        ("data-recipe-not-mapping", ["data", "--out", "{w}/o", "--recipe", "{w}/list.yaml"], "mapping"),
        ("data-recipe-missing", ["data", "--out", "{w}/o", "--recipe", "{w}/nope.yaml"], "does not exist"),
        ("data-malformed-jsonl", _data_with("malformed.jsonl"), "malformed.jsonl:2: not valid JSON"),
        ("data-missing-keys", _data_with("missing_keys.jsonl"), "missing_keys.jsonl:1: missing 'references'"),
        ("data-wrong-types", _data_with("wrong_types.jsonl"), "wrong_types.jsonl:1: 'source' must be a string"),
        ("data-null-source", _data_with("null_source.jsonl"), "null_source.jsonl:1: 'source' must be a string"),
        ("data-bad-refs", _data_with("bad_refs.jsonl"), "'references' must be a list of strings"),
        ("data-unknown-row-task", _data_with("unknown_task.jsonl"), "unknown task 'poetry'"),
        ("data-binary-jsonl", _data_with("binary.jsonl"), "binary.jsonl"),
        ("data-out-owned", ["data", "--out", "{w}/other_run"], "belongs to a different run"),
        ("data-out-is-file", ["data", "--out", "{w}/empty.txt"], "empty.txt"),
        ("data-out-read-only", ["data", "--out", ro], "cannot write"),
        # tune / run
        ("tune-recipe-missing", ["tune", "--recipe", "{w}/nope.yaml"], "does not exist"),
        ("tune-recipe-invalid", ["tune", "--recipe", "{w}/invalid.yaml"], "not valid YAML"),
        ("tune-recipe-unknown-key", ["tune", "--recipe", "{w}/unknown_key.yaml"], "unknown key"),
        ("tune-set-bad", ["tune", "--recipe", "{w}/wrong_type.yaml", "--set", "train.nope=1"], "has no key 'nope'"),
        ("tune-set-negative", ["tune", "--recipe", "{w}/list.yaml"], "mapping"),
        ("run-recipe-missing", ["run", "{w}/nope.yaml"], "does not exist"),
        ("run-recipe-binary", ["run", "{w}/binary.yaml"], "recipe"),
        ("run-set-zero-batch", ["run", "{w}/ok.yaml", "--set", "train.batch_size=0"], "train.batch_size"),
        ("run-set-negative-lr", ["run", "{w}/ok.yaml", "--set", "train.lr=-1"], "train.lr"),
        ("run-eval-steps-too-many", ["run", "{w}/ok.yaml", "--set", "train.eval_steps=0"], "train.eval_steps"),
        # merge
        ("merge-missing", ["merge", "{w}/nope"], "does not exist"),
        ("merge-empty-dir", ["merge", "{w}/empty_dir"], "no manifest.json"),
        ("merge-data", ["merge", "{w}/data"], "'data' artifact"),
        ("merge-bench", ["merge", "{w}/bench"], "no manifest.json"),
        ("merge-manifest-shape", ["merge", "{w}/manifest_shape"], "manifest.json"),
        ("merge-model-not-adapter", ["merge", "{w}/tiny"], "'base' artifact"),
        # mix
        ("mix-one-adapter", ["mix", "{w}/adapter:1", "--out", "{w}/o"], "at least two adapters"),
        ("mix-nan-weight", ["mix", "{w}/adapter:nan", "{w}/adapter", "--out", "{w}/o"], "not a finite number"),
        ("mix-model-not-adapter", ["mix", "{w}/tiny:0.5", "{w}/adapter:0.5", "--out", "{w}/o"], "'base' artifact"),
        ("mix-empty-dir", ["mix", "{w}/empty_dir", "{w}/adapter", "--out", "{w}/o"], "no manifest.json"),
        ("mix-path-like-markup", ["mix", "{w}/a[/b]:x:", "{w}/adapter", "--out", "{w}/o"], "a[/b]:x: does not exist"),
        ("mix-unfinished-adapter", ["mix", "{w}/adapter", "{w}/adapter", "--out", "{w}/o"], "no adapter_config.json"),
        # quantize
        ("quantize-missing", ["quantize", "{w}/nope"], "not found"),
        ("quantize-empty-dir", ["quantize", "{w}/empty_dir"], "no config.json"),
        ("quantize-gpt2", ["quantize", "{w}/gpt2"], "'gpt2' model"),
        ("quantize-adapter", ["quantize", "{w}/adapter"], "run `edgewrite merge` first"),
        ("quantize-data", ["quantize", "{w}/data"], "'data' artifact"),
        ("quantize-file", ["quantize", "{w}/empty.txt"], "is a file"),
        ("quantize-no-weights", ["quantize", "{w}/no_weights"], "no config.json"),
        ("quantize-bits", ["quantize", "{w}/tiny", "--bits", "7"], "--bits 7 is not supported for gguf"),
        ("quantize-format", ["quantize", "{w}/tiny", "-f", "tflite"], "unknown format 'tflite'"),
        ("quantize-type", ["quantize", "{w}/tiny", "--type", "Q9_X"], "unknown llama.cpp type 'Q9_X'"),
        ("quantize-type-not-gguf", ["quantize", "{w}/tiny", "-f", "onnx", "--type", "Q4_0"], "only applies to"),
        ("quantize-tensor-type-form", ["quantize", "{w}/tiny", "--tensor-type", "attn_v"], "expected PATTERN=TYPE"),
        ("quantize-tensor-type-type", ["quantize", "{w}/tiny", "--tensor-type", "attn_v=Q9_X"], "unknown ggml type"),
        ("quantize-tensor-type-regex", ["quantize", "{w}/tiny", "--tensor-type", "attn_v(=Q8_0"], "not a regular"),
        (
            "quantize-imatrix-not-gguf",
            ["quantize", "{w}/tiny", "-f", "onnx", "--rounding", "imatrix"],
            "needs --format",
        ),
        (
            "quantize-calibration-missing",
            ["quantize", "{w}/tiny", "--rounding", "imatrix", "--calibration", "{w}/nope"],
            "no train.jsonl",
        ),
        ("quantize-imatrix-both", ["quantize", "{w}/tiny", "--imatrix", "--imatrix-file", "{w}/empty.txt"], "give one"),
        ("quantize-imatrix-file-bad", ["quantize", "{w}/tiny", "--rounding", "imatrix:{w}/empty.txt"], "not an import"),
        ("quantize-imatrix-file-missing", ["quantize", "{w}/tiny", "--rounding", "imatrix:{w}/nope.npz"], "not found"),
        ("quantize-lora-not-adapter", ["quantize", "{w}/tiny", "--runtime-lora"], "needs a LoRA adapter"),
        ("quantize-lora-not-gguf", ["quantize", "writing", "--runtime-lora", "-f", "onnx"], "needs --format gguf"),
        ("quantize-lora-imatrix", ["quantize", "writing", "--runtime-lora", "--rounding", "imatrix"], "not imatrix"),
        ("quantize-lora-autoround", ["quantize", "writing", "--runtime-lora", "--rounding", "autoround"], "untuned"),
        ("quantize-autoround-iq4", ["quantize", "{w}/tiny", "--rounding", "autoround:5", "--type", "IQ4_NL"], "IQ4_NL"),
        (
            "quantize-autoround-onnx",
            ["quantize", "{w}/tiny", "--rounding", "autoround:5", "-f", "onnx"],
            "needs --form",
        ),
        ("quantize-autoround-steps", ["quantize", "{w}/tiny", "--rounding", "autoround:many"], "positive number"),
        (
            "quantize-autoround-imatrix",
            ["quantize", "{w}/tiny", "--autoround", "5", "--imatrix"],
            "give one --rounding",
        ),
        (
            "quantize-autoround-tensor-type",
            ["quantize", "{w}/tiny", "--rounding", "autoround:5", "--type", "Q4_0", "--tensor-type", "attn_v=Q6_K"],
            "lifts layers to Q8_0",
        ),
        ("quantize-rounding-unknown", ["quantize", "{w}/tiny", "--rounding", "stochastic"], "not a rounding and no"),
        ("quantize-rounding-bad", ["quantize", "{w}/tiny", "--rounding", "{w}/binary.bin"], "neither a rounding.npz"),
        ("quantize-rounding-missing", ["quantize", "{w}/tiny", "--rounding", "{w}/nope.npz"], "no such file"),
        ("quantize-rounding-folder", ["quantize", "{w}/tiny", "--rounding", "{w}/empty_dir"], "is a folder"),
        (
            "quantize-rounding-imatrix",
            ["quantize", "{w}/tiny", "--rounding", "{w}/binary.bin", "--imatrix"],
            "each say how to round",
        ),
        ("quantize-samples-zero", ["quantize", "{w}/tiny", "-f", "gptq", "--samples", "0"], "--samples"),
        ("quantize-device", ["quantize", "{w}/tiny", "--device", "tpu"], "use cpu or cuda"),
        ("quantize-out-owned", ["quantize", "{w}/tiny", "--out", "{w}/other_run"], "belongs to a different run"),
        ("quantize-out-read-only", ["quantize", "{w}/tiny", "--out", ro], "cannot write"),
        # generate
        ("generate-empty-text", ["generate", "  ", "-m", "{w}/tiny"], "empty"),
        ("generate-unknown-task", ["generate", "x", "-m", "{w}/tiny", "--task", "poetry"], "unknown task"),
        ("generate-missing-model", ["generate", "x", "-m", "{w}/nope"], "does not exist"),
        ("generate-adapter", ["generate", "x", "-m", "{w}/adapter"], "'adapter' artifact"),
        ("generate-data", ["generate", "x", "-m", "{w}/data"], "'data' artifact"),
        ("generate-gpt2", ["generate", "x", "-m", "{w}/gpt2"], "no manifest.json"),
        ("generate-zero-tokens", ["generate", "x", "-m", "{w}/tiny", "--max-new-tokens", "0"], "max-new-tokens"),
        ("generate-device", ["generate", "x", "-m", "{w}/tiny", "--device", "tpu"], "use cpu or cuda"),
        # eval
        ("eval-missing", ["eval", "{w}/nope"], "does not exist"),
        ("eval-empty-dir", ["eval", "{w}/empty_dir"], "no manifest.json"),
        ("eval-adapter", ["eval", "{w}/adapter"], "merge it first"),
        ("eval-data", ["eval", "{w}/data"], "'data' artifact"),
        ("eval-manifest-shape", ["eval", "{w}/manifest_shape"], "manifest.json"),
        ("eval-no-weights", ["eval", "{w}/no_weights", "--data-dir", SHARED_DATA, "--limit", "1"], "no model weights"),
        ("eval-limit-zero", ["eval", "{w}/tiny", "--limit", "0", "--data-dir", "{w}/jsonl"], "positive number"),
        ("eval-limit-negative", ["eval", "{w}/tiny", "--limit", "-4", "--data-dir", "{w}/jsonl"], "positive number"),
        ("eval-unknown-task", ["eval", "{w}/tiny", "--tasks", "poetry"], "unknown task"),
        ("eval-missing-data-dir", ["eval", "{w}/tiny", "--data-dir", "{w}/nope"], "does not exist"),
        ("eval-empty-data-dir", ["eval", "{w}/tiny", "--data-dir", "{w}/empty_dir"], "has no rows"),
        ("eval-split", ["eval", "{w}/tiny", "--split", "train"], "use dev or test"),
        ("eval-out-is-file", ["eval", "{w}/tiny", "--out", "{w}/empty.txt"], "is a file"),
        ("eval-out-read-only", ["eval", "{w}/tiny", "--out", ro], "cannot write"),
        ("eval-pre", ["eval", "{w}/tiny", "--pre", "spellcheck"], "unknown pre-pass"),
        ("eval-batch-zero", ["eval", "{w}/tiny", "--batch-size", "0"], "--batch-size"),
        # bench
        ("bench-missing", ["bench", "{w}/nope", "--out", "{w}/b1"], "does not exist"),
        ("bench-adapter", ["bench", "{w}/adapter", "--out", "{w}/b2"], "merge it first"),
        ("bench-data", ["bench", "{w}/data", "--out", "{w}/b3"], "'data' artifact"),
        ("bench-limit-zero", ["bench", "--limit", "0", "--out", "{w}/b4", "--data-dir", "{w}/jsonl"], "positive"),
        ("bench-device", ["bench", "--device", "tpu", "--out", "{w}/b5"], "use cpu, cuda"),
        ("bench-unknown-task", ["bench", "--tasks", "poetry", "--out", "{w}/b6"], "unknown task"),
        ("bench-pre", ["bench", "--pre", "spellcheck", "--out", "{w}/b7"], "unknown pre-pass"),
        ("bench-pre-on-alone", ["bench", "{w}/tiny", "--pre-on", "{w}/tiny", "--out", "{w}/b9"], "needs --pre"),
        ("bench-train-data", ["bench", "--train-data", "{w}/empty_dir", "--out", "{w}/b11"], "has no train.jsonl"),
        (
            "bench-pre-on-unlisted",
            ["bench", "{w}/tiny", "--pre", "harper", "--pre-on", "{w}/other", "--out", "{w}/b10"],
            "not one of the benched artifacts",
        ),
        ("bench-out-is-file", ["bench", "--out", "{w}/empty.txt", "--data-dir", "{w}/jsonl"], "is a file"),
        ("bench-threads-zero", ["bench", "--threads", "0", "--out", "{w}/b8"], "--threads"),
        ("bench-base-missing", ["bench", "--base", "{w}/nope", "--out", "{w}/b12"], "does not exist"),
        # report
        ("report-missing", ["report", "{w}/nope"], "no bench.json"),
        ("report-empty-dir", ["report", "{w}/empty_dir"], "no bench.json"),
        ("report-malformed", ["report", "{w}/bench_bad"], "not valid JSON"),
        ("report-old-schema", ["report", "{w}/bench_old"], "re-run `edgewrite bench`"),
        ("report-wrong-shape", ["report", "{w}/bench_shape"], "re-run"),
        ("report-no-cells", ["report", "{w}/bench"], "no cells"),
        ("report-negative-budget", ["report", "{w}/bench", "--max-latency-ms", "-5"], "positive number"),
        ("report-zero-memory", ["report", "{w}/bench", "--max-memory-mb", "0"], "positive number"),
        # assist
        ("assist-missing", ["assist", "{w}/nope.md", "-m", "{w}/tiny"], "does not exist"),
        ("assist-empty", ["assist", "{w}/empty.txt", "-m", "{w}/tiny"], "empty"),
        ("assist-folder", ["assist", "{w}/empty_dir", "-m", "{w}/tiny"], "not a file"),
        ("assist-binary", ["assist", "{w}/binary.bin", "-m", "{w}/tiny"], "binary"),
        ("assist-not-utf8", ["assist", "{w}/latin1.txt", "-m", "{w}/tiny"], "not UTF-8"),
        ("assist-unknown-task", ["assist", "{w}/doc.md", "-m", "{w}/tiny", "--task", "poetry"], "unknown task"),
        ("assist-model-missing", ["assist", "{w}/doc.md", "-m", "{w}/nope"], "does not exist"),
        ("assist-adapter", ["assist", "{w}/doc.md", "-m", "{w}/adapter"], "'adapter' artifact"),
        ("assist-data", ["assist", "{w}/doc.md", "-m", "{w}/data"], "'data' artifact"),
        ("assist-out-is-input", ["assist", "{w}/doc.md", "-m", "{w}/tiny", "--out", "{w}/doc.md"], "--in-place"),
        ("assist-out-folder", ["assist", "{w}/doc.md", "-m", "{w}/tiny", "--out", "{w}/empty_dir"], "is a folder"),
        (
            "assist-out-no-parent",
            ["assist", "{w}/doc.md", "-m", "{w}/tiny", "--out", "{w}/nope/x.md"],
            "does not exist",
        ),
        ("assist-out-read-only", ["assist", "{w}/doc.md", "-m", "{w}/tiny", "--out", ro + ".md"], "cannot write"),
        ("assist-in-place-stdin", ["assist", "-", "-m", "{w}/tiny", "--in-place"], "--in-place needs a FILE"),
        ("assist-pre", ["assist", "{w}/doc.md", "-m", "{w}/tiny", "--pre", "spellcheck"], "unknown pre-pass"),
        ("assist-batch-zero", ["assist", "{w}/doc.md", "-m", "{w}/tiny", "--batch-size", "0"], "--batch-size"),
        # serve
        ("serve-model-missing", ["serve", "-m", "{w}/nope"], "does not exist"),
        ("serve-adapter", ["serve", "-m", "{w}/adapter"], "'adapter' artifact"),
        ("serve-data", ["serve", "-m", "{w}/data"], "'data' artifact"),
        ("serve-host-no-key", ["serve", "-m", "{w}/tiny", "--host", "0.0.0.0"], "without an API key"),
        (
            "serve-bad-host",
            ["serve", "-m", "{w}/tiny", "--host", "no.such.host.invalid", "--api-key", "k"],
            "not an address",
        ),
        ("serve-port-zero", ["serve", "-m", "{w}/tiny", "--port", "0"], "--port"),
        ("serve-pre", ["serve", "-m", "{w}/tiny", "--pre", "spellcheck"], "unknown pre-pass"),
        # export
        ("export-missing", ["export", "ollama", "{w}/nope"], "does not exist"),
        ("export-not-gguf", ["export", "ollama", "{w}/tiny"], "not a GGUF artifact"),
        ("export-data", ["export", "ollama", "{w}/data"], "not a GGUF artifact"),
        ("export-empty-dir", ["export", "ollama", "{w}/empty_dir"], "no manifest.json"),
        # lsp
        ("lsp-unknown-task", ["lsp", "-m", "harper", "--task", "poetry"], "unknown task"),
        ("lsp-debounce", ["lsp", "-m", "harper", "--debounce", "-1"], "--debounce"),
        ("lsp-model-missing", ["lsp", "-m", "{w}/nope"], "does not exist"),
        # usage errors from the option parser
        ("usage-missing-argument", ["eval"], "Missing argument"),
        ("usage-bad-int", ["eval", "{w}/tiny", "--limit", "many"], "--limit"),
        ("usage-unknown-command", ["evaluate"], "No such command"),
        ("usage-unknown-option", ["eval", "{w}/tiny", "--fast"], "No such option"),
    ]


def _data_with(name: str) -> list[str]:
    return ["data", "--out", "{w}/o", "--data-dir", "{w}/jsonl", "--set", f"data.sources=[{{path: set/{name}}}]"]


CASES = _cases()


def _snapshot(root: Path) -> set[str]:
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if p.name == "manifest.json" or p.name.endswith(".partial")
    }


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line_and_exit_2(case, w: Path, capsys, monkeypatch) -> None:
    from edgewrite import cli

    name, argv, fragment = case
    if "/sys/" in " ".join(argv) and not _read_only_available():
        pytest.skip("no read-only file system to write to here")
    monkeypatch.chdir(w)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 - closed by the test's teardown
    argv = [a.replace("{w}", str(w)) for a in argv]
    before = _snapshot(w)
    monkeypatch.setattr(sys, "argv", ["edgewrite", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_info.value.code == 2, (name, err)
    assert len(lines) == 1, (name, err)
    assert "Traceback" not in err and fragment.lower() in lines[0].lower(), (name, lines[0])
    assert _snapshot(w) == before, f"{name} left {sorted(_snapshot(w) - before)}"
