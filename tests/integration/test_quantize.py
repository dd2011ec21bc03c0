"""Every format quantizes the tiny Llama, reads back its template and stop token, loads through the
runtime Protocol and generates; bad input is refused with one clear line."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from edgewrite.errors import EdgewriteError
from edgewrite.quantize import quantize
from edgewrite.runtimes import load_runtime
from edgewrite.tasks import build_prompt

PROMPT_TEXT = "She go to school every days, and 12345 2024 — café!"


@pytest.fixture(scope="module")
def artifacts(tiny_exports: dict[str, Path]) -> dict[str, Path]:
    return tiny_exports


@pytest.mark.parametrize("name", ["gguf-q8", "gguf-q4", "onnx-int4", "gptq-4bit"])
def test_artifact_manifest_readback_and_generation(artifacts: dict, tiny_model_dir: Path, name: str) -> None:
    from transformers import AutoTokenizer

    path = artifacts[name]
    manifest = json.loads((path / "manifest.json").read_text())
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    stop_id = tok.convert_tokens_to_ids("<|im_end|>")
    assert manifest["kind"] == "quantized" and manifest["stop_token"] == "<|im_end|>"
    assert stop_id in manifest["readback"]["stop_ids"]
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    runtime, _ = load_runtime(path)
    prompt = build_prompt(runtime.tokenizer, "Fix grammar", PROMPT_TEXT)
    (gen,) = runtime.generate([prompt], max_new_tokens=6)
    assert gen.new_tokens <= 6 and gen.prompt_tokens > 10 and gen.ttft_s >= 0 and gen.finish in ("stop", "length")
    # The runtime tokenizes the shared prompt exactly as transformers does.
    assert runtime.tokenize(prompt) == tok(prompt, add_special_tokens=False)["input_ids"]
    runtime.close()


def test_gguf_records_type_mix_and_fallbacks(artifacts: dict) -> None:
    q4 = json.loads((artifacts["gguf-q4"] / "manifest.json").read_text())["details"]
    assert q4["type"] == "Q4_K_M" and q4["tensor_types"]
    # 64- and 128-wide rows are not multiples of 256: k-quants fall back, and the reason is kept.
    assert q4["fallback_tensors"] > 0 and any("not divisible by 256" in r for r in q4["fallback_reasons"])
    q8 = json.loads((artifacts["gguf-q8"] / "manifest.json").read_text())["details"]
    assert q8["fallback_tensors"] == 0 and "Q8_0" in q8["tensor_types"]


def test_gguf_file_carries_the_chat_template(artifacts: dict, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from edgewrite.quantize.gguf_reader import FastGGUFReader as GGUFReader

    details = json.loads((artifacts["gguf-q4"] / "manifest.json").read_text())["details"]
    reader = GGUFReader(str(artifacts["gguf-q4"] / details["gguf_file"]))
    template = reader.get_field("tokenizer.chat_template").contents()
    assert template == AutoTokenizer.from_pretrained(tiny_model_dir).chat_template


def test_gptq_quantizes_on_cpu_with_task_calibration(artifacts: dict, tmp_path: Path) -> None:
    out = artifacts["gptq-4bit"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["details"]["group_size"] == 64 and manifest["details"]["calibration_rows"] == 16
    assert (out / "logs").is_dir() and not Path("logs").exists()  # GPT-QModel's logs travel with the artifact
    # An already-quantized folder is not a valid input.
    with pytest.raises(EdgewriteError, match="'quantized' artifact"):
        quantize(str(out), "gguf", 4, out=tmp_path / "again")


@pytest.mark.parametrize(
    "fmt, bits, supported", [("gguf", 7, "2, 3, 4, 5, 6, 8, 16"), ("gptq", 5, "2, 3, 4, 8"), ("onnx", 8, "4, 16, 32")]
)
def test_unsupported_bits_list_the_supported_ones(tiny_model_dir: Path, fmt: str, bits: int, supported: str) -> None:
    with pytest.raises(EdgewriteError, match=f"supported: {supported}"):
        quantize(str(tiny_model_dir), fmt, bits)


def test_inputs_that_are_not_a_merged_model(tmp_path: Path, artifacts: dict) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "manifest.json").write_text(json.dumps({"kind": "adapter"}))
    with pytest.raises(EdgewriteError, match="run `edgewrite merge` first"):
        quantize(str(adapter), "gguf", 4)
    gguf_file = next(artifacts["gguf-q8"].glob("*.gguf"))
    with pytest.raises(EdgewriteError, match="is a file"):
        quantize(str(gguf_file), "gguf", 4)


def test_corrupt_files_are_reported(artifacts: dict, tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-gguf"
    shutil.copytree(artifacts["gguf-q8"], broken)
    f = next(broken.glob("*.gguf"))
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    with pytest.raises(EdgewriteError, match="corrupt or truncated"):
        load_runtime(broken)
    broken_st = tmp_path / "broken-safetensors"
    shutil.copytree(tiny_model_dir, broken_st)
    (broken_st / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    (broken_st / "manifest.json").write_text(json.dumps({"kind": "merged", "format": "safetensors"}))
    with pytest.raises(EdgewriteError, match="corrupt or truncated"):
        load_runtime(broken_st)
    broken_onnx = tmp_path / "broken-onnx"
    shutil.copytree(artifacts["onnx-int4"], broken_onnx)
    (broken_onnx / "model.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(EdgewriteError, match="corrupt or truncated"):
        load_runtime(broken_onnx)


def test_missing_optional_dependency_names_what_to_install(tiny_model_dir: Path, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", None)
    with pytest.raises(EdgewriteError, match="onnxruntime-genai"):
        quantize(str(tiny_model_dir), "onnx", 4, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_cuda_without_a_gpu(tiny_model_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(EdgewriteError, match="no CUDA GPU"):
        quantize(str(tiny_model_dir), "onnx", 4, device="cuda")


def test_gguf_imatrix_and_tensor_type_overrides_reach_llama_cpp(artifacts: dict, tiny_model_dir: Path) -> None:
    """--imatrix collects llama-imatrix's statistic (mean squared input per column) from training rows and
    llama.cpp rounds with it; --tensor-type PATTERN=TYPE puts the matching tensors in another type."""
    import numpy as np

    from edgewrite.quantize.gguf_reader import FastGGUFReader as GGUFReader

    data = artifacts["gptq-4bit"].parent / "data"
    root = artifacts["gguf-q4"].parent
    plain, _ = quantize(str(tiny_model_dir), "gguf", 4, out=root / "q40", gguf_type="Q4_0")
    weighted, manifest = quantize(
        str(tiny_model_dir),
        "gguf",
        4,
        out=root / "q40-imat",
        gguf_type="Q4_0",
        rounding="imatrix",
        tensor_types=["attn_v=Q8_0"],
        calibration=data,
        samples=16,
        log=lambda _line: None,
    )
    details = manifest["details"]
    assert details["imatrix"]["rows"] == 16 and details["imatrix"]["tokens"] > 16
    assert details["tensor_type_overrides"] == ["attn_v=Q8_0"]
    values = dict(np.load(weighted / "imatrix.npz"))
    assert sorted(values) == sorted(
        f"blk.{i}.{k}.weight"
        for i in range(2)
        for k in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    )
    assert values["blk.0.attn_q.weight"].shape == (64,) and values["blk.1.ffn_down.weight"].shape == (128,)
    assert all(np.isfinite(v).all() and (v > 0).all() for v in values.values())
    # q, k and v read the same normalized input: one statistic
    np.testing.assert_allclose(values["blk.1.attn_q.weight"], values["blk.1.attn_v.weight"])

    def tensors(path: Path) -> dict:
        reader = GGUFReader(str(next(path.glob("*.gguf"))))
        return {t.name: (t.tensor_type.name, bytes(t.data)) for t in reader.tensors}

    a, b = tensors(plain), tensors(weighted)
    assert {n: t for n, (t, _) in b.items() if "attn_v" in n} == {
        "blk.0.attn_v.weight": "Q8_0",
        "blk.1.attn_v.weight": "Q8_0",
    }
    assert a["blk.0.attn_q.weight"][0] == b["blk.0.attn_q.weight"][0] == "Q4_0"
    # the importance weights changed how llama.cpp rounded the same weights
    assert a["blk.0.attn_q.weight"][1] != b["blk.0.attn_q.weight"][1]
    assert a["blk.0.attn_v.weight"][0] == "Q4_0"
    # the matrix travels with the artifact: quantizing again from that file gives the same bytes, no data needed
    again, m2 = quantize(
        str(tiny_model_dir),
        "gguf",
        4,
        out=root / "q40-imat-file",
        gguf_type="Q4_0",
        rounding=f"imatrix:{weighted / 'imatrix.npz'}",
        tensor_types=["attn_v=Q8_0"],
    )
    assert m2["details"]["imatrix"]["sha256"] and tensors(again) == b


def test_runtime_lora_on_a_base_that_is_not_a_gguf_quantizes_the_base_and_keeps_the_adapter_apart(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """An adapter on a safetensors base: the base goes through llama.cpp's converter and quantizer alone, the
    adapter through convert_lora_to_gguf.py; llama.cpp with both computes what the peft merge computes."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from edgewrite.artifacts import write_manifest
    from edgewrite.runtimes.hf import HFRuntime

    torch.manual_seed(3)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, config)
    adapter = tmp_path / "run" / "adapter"
    peft_model.save_pretrained(adapter)
    write_manifest(
        adapter,
        "adapter",
        fingerprint="tiny-lora",
        format="peft",
        base_model={"ref": str(tiny_model_dir)},
        prompt_style="chat",
        stop_token="<|im_end|>",
    )
    merged = tmp_path / "merged-hf"
    peft_model.merge_and_unload().save_pretrained(merged)
    shutil.copy2(tiny_model_dir / "tokenizer.json", merged)
    shutil.copy2(tiny_model_dir / "tokenizer_config.json", merged)
    if (tiny_model_dir / "chat_template.jinja").is_file():
        shutil.copy2(tiny_model_dir / "chat_template.jinja", merged)

    path, manifest = quantize(str(adapter), "gguf", 8, runtime_lora=True)
    assert path == tmp_path / "run" / "gguf-q8_0-lora"  # beside the adapter, like a merge's exports
    details = manifest["details"]
    assert manifest["settings"] == {"type": "Q8_0", "runtime_lora": True} and "base_as_is" not in details
    assert details["tensor_types"].get("Q8_0") and details["lora_tensors"] == 2 * 3 * 2  # A, B x 3 modules x 2 layers
    from edgewrite.runtimes.llamacpp import LlamaCppRuntime

    def cos(a, b) -> float:
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    hf = HFRuntime(merged, batch_size=1)
    rt, _ = load_runtime(path, threads=2)
    bare = LlamaCppRuntime(path, details["gguf_file"], manifest["stop_token"], threads=2)  # the base alone
    for text in ("She go to school every days.", "Hello world"):
        ids = hf.tokenize(build_prompt(hf.tokenizer, "Fix grammar", text))
        want, got, without = hf.next_token_logits(ids), rt.next_token_logits(ids), bare.next_token_logits(ids)
        assert cos(want, got) > 0.999 and cos(want, got) > cos(want, without), (cos(want, got), cos(want, without))
    rt.close()
    bare.close()


def test_autoround_tunes_the_rounding_into_a_plain_llama_cpp_file(artifacts: dict, tiny_model_dir: Path) -> None:
    """--autoround: AutoRound learns each block's rounding on training rows and writes a GGUF of the asked
    type; llama.cpp loads it as any Q4_0 file, its logits follow the fp32 model's, and its weights are not
    the round-to-nearest ones llama.cpp's quantizer writes."""
    import numpy as np

    from edgewrite.quantize.gguf_reader import FastGGUFReader as GGUFReader
    from edgewrite.runtimes.hf import HFRuntime

    data = artifacts["gptq-4bit"].parent / "data"
    root = artifacts["gguf-q4"].parent
    lines: list[str] = []
    path, manifest = quantize(
        str(tiny_model_dir),
        "gguf",
        4,
        out=root / "q40-ar",
        gguf_type="Q4_0",
        rounding="autoround:5",
        calibration=data,
        samples=16,
        log=lines.append,
    )
    assert manifest["settings"] == {
        "type": "Q4_0",
        "rounding": "autoround",
        "autoround_iters": 5,
        "calibration_rows": 16,
    }
    assert manifest["rounding"] == "autoround:5"  # as it was asked for: one form on the CLI, recipe, manifest
    details = manifest["details"]
    assert details["autoround"]["windows"] >= 1 and details["autoround"]["iters"] == 5
    assert details["tensor_types"]["Q4_0"] == 2 * 7  # every linear layer of both blocks
    assert [line for line in lines if "block" in line][-1].startswith("autoround: block 2/2 tuned")
    assert sorted(p.name for p in path.iterdir() if p.suffix == ".gguf") == ["model-q4_0.gguf"]
    plain, _ = quantize(str(tiny_model_dir), "gguf", 4, out=root / "q40-rtn", gguf_type="Q4_0")

    def weights(folder: Path) -> dict:
        reader = GGUFReader(str(next(folder.glob("*.gguf"))))
        return {t.name: bytes(t.data) for t in reader.tensors if t.name.startswith("blk.")}

    tuned, rtn = weights(path), weights(plain)
    # AutoRound keeps a block's best step: with 5 steps on a random tiny model that can be its first one (its
    # own nearest rounding), so one block may match llama.cpp's bytes; not both
    assert tuned.keys() == rtn.keys() and sum(tuned[k] != rtn[k] for k in tuned if "attn_q" in k) >= 1

    def cos(a, b) -> float:
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    hf = HFRuntime(tiny_model_dir, batch_size=1)
    rt, _ = load_runtime(path, threads=2)
    ids = hf.tokenize(build_prompt(hf.tokenizer, "Fix grammar", PROMPT_TEXT))
    assert cos(hf.next_token_logits(ids), rt.next_token_logits(ids)) > 0.98
    # teacher forcing (benchmarks/rounding.py): one pass gives the logits after every answer token
    seq = ids + [11, 12, 13]
    rows = rt.teacher_forced_logits(seq, len(ids) - 1)
    assert len(rows) == 3  # after ids[-1], after 11, after 12
    np.testing.assert_allclose(rows[0], rt.next_token_logits(ids), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(rows[-1], rt.next_token_logits(seq[:-1]), rtol=1e-3, atol=1e-3)
    (gen,) = rt.generate([build_prompt(rt.tokenizer, "Fix grammar", PROMPT_TEXT)], max_new_tokens=4)
    assert gen.new_tokens >= 1
    rt.close()

    # the rounding kept as data: applied with no AutoRound and no training rows, it rebuilds the tuned file's
    # tensors byte for byte from the model's own F16 weights
    kept = details["rounding_file"]
    assert (path / "rounding.npz").is_file() and kept["tensors_kept"] == 2 * 7 + 1  # and the Q8_0 token embedding
    assert 0 < kept["weights_off_nearest"] < 0.5
    lines.clear()
    applied, again = quantize(
        str(tiny_model_dir), out=root / "q40-applied", rounding=path / "rounding.npz", log=lines.append
    )
    assert again["settings"]["type"] == "Q4_0" and again["settings"]["rounding"] == "autoround"
    assert again["rounding"] == "rounding.npz"
    assert again["details"]["rounding_file"]["tensors_differing"] == [] and lines[-1].startswith("rounding: all ")
    full = {t.name: bytes(t.data) for t in GGUFReader(str(next(path.glob("*.gguf")))).tensors}
    assert {t.name: bytes(t.data) for t in GGUFReader(str(next(applied.glob("*.gguf")))).tensors} == full
    # ... only to the model it was tuned for
    other = root / "tiny-copy"
    shutil.copytree(tiny_model_dir, other)
    with pytest.raises(EdgewriteError, match="tuned for another model"):
        quantize(str(other), out=root / "q40-other", rounding=path / "rounding.npz")
    assert not (root / "q40-other").exists()


def test_autoround_lifts_the_layers_a_tensor_type_names_to_q8_0(artifacts: dict, tiny_model_dir: Path) -> None:
    """--autoround with --tensor-type PATTERN=Q8_0: the layers whose GGUF names match are tuned and written
    in Q8_0 (llama.cpp's Q4_K_M lifts attn_v and ffn_down the same way), the rest in Q4_0; the rounding file
    keeps both, so --rounding rebuilds the file byte for byte; the bench names it by what was lifted."""
    from edgewrite.bench import describe
    from edgewrite.quantize.gguf_reader import FastGGUFReader as GGUFReader

    data = artifacts["gptq-4bit"].parent / "data"
    root = artifacts["gguf-q4"].parent
    lines: list[str] = []
    common = {"gguf_type": "Q4_0", "rounding": "autoround:2", "calibration": data, "samples": 16}
    with pytest.raises(EdgewriteError, match="matches no layer"):
        quantize(str(tiny_model_dir), "gguf", 4, out=root / "q40-ar-none", tensor_types=["nothing=Q8_0"], **common)
    assert not (root / "q40-ar-none").exists()
    path, manifest = quantize(
        str(tiny_model_dir),
        "gguf",
        4,
        out=root / "q40-ar-mixed",
        tensor_types=[r"blk\.1\.(attn_v|ffn_down)=Q8_0"],
        log=lines.append,
        **common,
    )
    assert "autoround: 2 layers written as Q8_0" in lines
    details = manifest["details"]
    assert details["tensor_types"]["Q8_0"] == 1 + 2 and details["tensor_types"]["Q4_0"] == 2 * 7 - 2
    types = {t.name: t.tensor_type.name for t in GGUFReader(str(path / details["gguf_file"])).tensors}
    assert types["blk.1.ffn_down.weight"] == types["blk.1.attn_v.weight"] == "Q8_0"
    assert types["blk.0.ffn_down.weight"] == types["blk.1.ffn_up.weight"] == "Q4_0"
    assert details["rounding_file"]["tensors_kept"] == 2 * 7 + 1
    assert describe(path, manifest)["label"] == "tuned gguf Q4_0 AutoRound + 2 Q8_0"
    applied, again = quantize(str(tiny_model_dir), out=root / "q40-mixed-applied", rounding=path / "rounding.npz")
    assert again["details"]["rounding_file"]["tensors_differing"] == []
    assert describe(applied, again)["label"] == "tuned gguf Q4_0 AutoRound + 2 Q8_0"


@pytest.mark.parametrize("name", ["gguf-q8", "onnx-int4", "gptq-4bit", "hf"])
def test_generate_prints_nothing_but_the_answer_on_stdout(
    artifacts: dict, tiny_model_dir: Path, tmp_path: Path, name: str
) -> None:
    """`$(edgewrite generate ...)` and pipes get the answer alone, whatever the runtime (GPT-QModel printed
    'from_quantized: adapter: None' there)."""
    import subprocess

    from edgewrite.artifacts import write_manifest
    from edgewrite.tasks import TASKS

    if name == "hf":
        path = tmp_path / "hf"
        shutil.copytree(tiny_model_dir, path)
        write_manifest(path, "base", fingerprint="tiny", format="safetensors", stop_token="<|im_end|>")
    else:
        path = artifacts[name]
    args = ["generate", "She go home.", "-m", str(path), "--max-new-tokens", "6"]
    done = subprocess.run([sys.executable, "-m", "edgewrite.cli", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "6 tokens" in done.stderr and done.stdout.endswith("\n")
    assert not any(word in done.stdout for word in ("from_quantized", "INFO", "WARNING", "tok/s")), done.stdout
    if name != "gptq-4bit":  # GPT-QModel's CPU kernels are not bitwise repeatable across processes
        runtime, _ = load_runtime(path)
        prompt = build_prompt(runtime.tokenizer, TASKS["grammar"].default_instruction, "She go home.", "chat")
        (want,) = runtime.generate([prompt], max_new_tokens=6)
        runtime.close()
        assert done.stdout == want.text + "\n"


SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_gptq_without_calibration_uses_the_default_data_folder(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Like GPT-QModel and llama-imatrix, a default calibration set: the model's training rows when its
    manifest names them, else rows built from the default data folder; the manifest says which."""
    import os

    from edgewrite.recipe import default_data_dir

    if not SHARED_DATA.is_dir():
        assert os.environ.get("CI") != "true", f"CI needs {SHARED_DATA}"
        pytest.skip(f"{SHARED_DATA} not found")
    monkeypatch.setenv("EDGEWRITE_DATA", str(SHARED_DATA))
    _, manifest = quantize(str(tiny_model_dir), "gptq", 4, out=tmp_path / "gptq", samples=8)
    source = manifest["details"]["calibration_source"]
    assert source == f"rows built from the default data folder ({SHARED_DATA})", source
    assert manifest["details"]["calibration_rows"] == 8
    monkeypatch.setenv("EDGEWRITE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(EdgewriteError, match="EDGEWRITE_DATA=.*is not a folder"):
        default_data_dir()


def test_an_export_that_lost_its_chat_template_is_not_kept() -> None:
    from edgewrite.quantize import _check_readback

    with pytest.raises(EdgewriteError, match="lost the chat template"):
        _check_readback({"chat_template": None, "stop_ids": [2]}, "{{ messages }}", "<|im_end|>", 2, "gguf")
    with pytest.raises(EdgewriteError, match="changed the chat template"):
        _check_readback({"chat_template": "x", "stop_ids": [2]}, "{{ messages }}", "<|im_end|>", 2, "gguf")
    _check_readback({"chat_template": "{{ messages }}\n", "stop_ids": [2]}, "{{ messages }}", "<|im_end|>", 2, "gguf")


def test_an_export_the_machine_cannot_hold_is_refused_before_any_work(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from edgewrite import quantize as q

    assert q.model_params(tiny_model_dir) == sum(
        p.numel() for p in __import__("transformers").AutoModelForCausalLM.from_pretrained(tiny_model_dir).parameters()
    )
    monkeypatch.setitem(q.RAM_PER_PARAM, "onnx", 1e9)  # as if each parameter needed a GB
    with pytest.raises(EdgewriteError, match=r"exporting this .* model to onnx needs about .* GiB of memory"):
        quantize(str(tiny_model_dir), "onnx", 4, out=tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()

    class Full:
        free = 1024

    monkeypatch.setattr(q.shutil, "disk_usage", lambda _: Full())
    with pytest.raises(EdgewriteError, match="needs about .* GiB on disk .* give --out on a larger disk"):
        quantize(str(tiny_model_dir), "gguf", 4, out=tmp_path / "gguf")
    assert not (tmp_path / "gguf").exists()
