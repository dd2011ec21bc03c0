"""An artifact's tokenizer and chat template without transformers (and so without torch).

The GGUF and ONNX runtimes need a tokenizer only to render the chat template and to find the stop
token; importing transformers for that pulls in torch and costs ~300 MB of memory and seconds of
start-up. This renders the template the way transformers does (a sandboxed jinja2 environment with
``trim_blocks`` and ``lstrip_blocks``, its ``tojson``/``raise_exception``/``strftime_now`` helpers, the
special tokens as template variables) and tokenizes with the ``tokenizers`` library that
transformers' own fast tokenizer wraps; a test checks prompts and token ids against transformers on
every task.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgewrite.errors import EdgewriteError

_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


@lru_cache(maxsize=8)
def _compile(template: str) -> Any:
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False
    ) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # {"content": "<|im_end|>", ...} in older tokenizer_config files
        return value.get("content")
    return value if isinstance(value, str) else None


class ChatTokenizer:
    """The tokenizer surface edgewrite's prompt builder uses: ``apply_chat_template``, ``__call__``,
    special tokens, ``decode``."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        if not (folder / "tokenizer.json").is_file():
            raise EdgewriteError(f"{folder} has no tokenizer.json; re-export the artifact (edgewrite quantize)")
        try:
            self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
            config = (
                json.loads((folder / "tokenizer_config.json").read_text())
                if (folder / "tokenizer_config.json").is_file()
                else {}
            )
        except Exception as e:  # noqa: BLE001 - tokenizers raises a plain Exception for a damaged file
            raise EdgewriteError(f"the tokenizer in {folder} cannot be read ({e}); re-export the artifact") from e
        template = folder / "chat_template.jinja"
        self.chat_template = template.read_text(encoding="utf-8") if template.is_file() else config.get("chat_template")
        self.special: dict[str, str] = {}
        for key in _SPECIAL_KEYS:
            if (text := _token_text(config.get(key))) is not None:
                self.special[key] = text
        self._added = {t.content: i for i, t in self._tok.get_added_tokens_decoder().items()}

    def __getattr__(self, name: str) -> Any:
        if name in _SPECIAL_KEYS:
            return self.__dict__.get("special", {}).get(name)
        if name.endswith("_token_id") and name[: -len("_id")] in _SPECIAL_KEYS:
            token = self.__dict__.get("special", {}).get(name[: -len("_id")])
            return None if token is None else self.convert_tokens_to_ids(token)
        raise AttributeError(name)

    @property
    def all_special_tokens(self) -> list[str]:
        return list(dict.fromkeys(self.special.values()))

    def get_added_vocab(self) -> dict[str, int]:
        return dict(self._added)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self._tok.encode(text, add_special_tokens=add_special_tokens).ids}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def apply_chat_template(
        self, messages: list[dict[str, str]], tokenize: bool = False, add_generation_prompt: bool = False, **kwargs: Any
    ) -> Any:
        if not self.chat_template:
            raise EdgewriteError("this artifact has no chat template; re-export it from the merged model")
        try:
            text = _compile(self.chat_template).render(
                messages=messages, add_generation_prompt=add_generation_prompt, **{**self.special, **kwargs}
            )
        except Exception as e:  # noqa: BLE001 - jinja2 raises several types for a template that does not render
            raise EdgewriteError(f"the artifact's chat template does not render ({e}); re-export it") from e
        return self(text, add_special_tokens=False)["input_ids"] if tokenize else text
