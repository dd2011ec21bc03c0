"""No unsafe loading anywhere in the package: no remote code, no pickle, safetensors for every model."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "edgewrite"
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_unsafe_loading(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imports |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imports & {"pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
    for call in _calls(tree):
        name = _name(call.func)
        kwargs = {k.arg: k.value for k in call.keywords}
        trust = kwargs.get("trust_remote_code")
        assert not (isinstance(trust, ast.Constant) and trust.value), f"{path}:{call.lineno}: trust_remote_code"
        assert name not in ("eval", "exec"), f"{path}:{call.lineno}: {name}()"
        assert not name.endswith("yaml.load"), f"{path}:{call.lineno}: yaml.load (use yaml.safe_load)"
        shell = kwargs.get("shell")
        assert not (isinstance(shell, ast.Constant) and shell.value), f"{path}:{call.lineno}: shell=True"
        if name.endswith("torch.load"):
            w = kwargs.get("weights_only")
            assert isinstance(w, ast.Constant) and w.value is True, (
                f"{path}:{call.lineno}: torch.load without weights_only"
            )
        if name.endswith("ForCausalLM.from_pretrained") and "gguf_file" not in kwargs:
            safe = kwargs.get("use_safetensors")
            assert isinstance(safe, ast.Constant) and safe.value is True, f"{path}:{call.lineno}: not safetensors-only"


def test_pickle_weights_are_refused(tmp_path: Path) -> None:
    import json

    from edgewrite.errors import EdgewriteError
    from edgewrite.models import check_causal_lm

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not opened")
    with pytest.raises(EdgewriteError, match="only pickle weights"):
        check_causal_lm(tmp_path, str(tmp_path))
