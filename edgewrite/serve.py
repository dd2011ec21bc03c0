"""``edgewrite serve``: an OpenAI-compatible API, a task-aware edit endpoint and a local editor page.

One model instance serves every request; a lock makes requests take turns on it (the runtimes are
not re-entrant), while FastAPI keeps accepting connections. Loopback only by default.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from edgewrite.errors import EdgewriteError

MAX_BODY_BYTES = 64 * 1024


# Request bodies live at module level: FastAPI resolves (postponed) annotations from module globals.
class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    stream: bool = False
    temperature: float | None = None  # accepted for compatibility; decoding is greedy


class EditRequest(BaseModel):
    text: str = Field(min_length=1)
    task: str = "grammar"


PAGE = Path(__file__).with_name("page.html")


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise EdgewriteError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port") from e


def create_app(editor: Any, manifest: dict, model_name: str, max_body_bytes: int = MAX_BODY_BYTES) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

    from edgewrite.assist import assist_document, word_diff
    from edgewrite.tasks import TASK_NAMES

    lock = threading.Lock()
    runtime = editor.runtime
    style = manifest.get("prompt_style", "chat")
    app = FastAPI(title="edgewrite", version="1")

    def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body_bytes:
            return error(413, f"request body over {max_body_bytes} bytes")
        if request.method == "POST":
            body = await request.body()
            if len(body) > max_body_bytes:
                return error(413, f"request body over {max_body_bytes} bytes")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        message = "malformed JSON" if first.get("type") == "json_invalid" else f"{where}: {first.get('msg')}"
        return error(400, message)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": model_name, "format": manifest.get("format"), "runtime": editor.name}

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "edgewrite"}]}

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    def prompt_for(req: ChatRequest) -> str:
        from edgewrite.tasks import chat_messages

        messages = chat_messages([m.model_dump() for m in req.messages], style)
        return runtime.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> Any:
        if runtime is None:
            return error(400, f"this server runs '{editor.name}', a system that is not a model; use /v1/edit")
        prompt = prompt_for(req)
        limit = req.max_completion_tokens or req.max_tokens or 256
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if not req.stream:
            with lock:
                (gen,) = runtime.generate([prompt], max_new_tokens=limit)
            return {
                "id": rid,
                "object": "chat.completion",
                "created": created,
                "model": model_name,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": gen.text}, "finish_reason": gen.finish}
                ],
                "usage": {
                    "prompt_tokens": gen.prompt_tokens,
                    "completion_tokens": gen.new_tokens,
                    "total_tokens": gen.prompt_tokens + gen.new_tokens,
                },
            }

        def events() -> Any:
            def chunk(delta: dict, finish: str | None = None) -> str:
                body = {
                    "id": rid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model_name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                return f"data: {json.dumps(body)}\n\n"

            with lock:
                yield chunk({"role": "assistant", "content": ""})
                for piece in runtime.stream(prompt, max_new_tokens=limit):
                    yield chunk({"content": piece})
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/edit")
    def edit(req: EditRequest) -> Any:
        if req.task not in TASK_NAMES:
            return error(400, f"unknown task '{req.task}'; tasks: {', '.join(TASK_NAMES)}")
        if not req.text.strip():
            return error(400, "text is empty")
        with lock:
            output, _, _ = assist_document(editor, req.text, req.task)
        return {"task": req.task, "input": req.text, "output": output, "diff": word_diff(req.text, output)}

    return app


def serve(model_path: Path, host: str, port: int, device: str = "cpu", pre: str | None = None) -> None:
    import uvicorn

    from edgewrite.edit import load_editor

    check_port(host, port)
    editor, manifest = load_editor(model_path, device=device, pre=pre)
    app = create_app(editor, manifest, model_name=model_path.name)
    uvicorn.run(app, host=host, port=port, log_level="warning")
