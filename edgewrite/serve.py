"""``edgewrite serve``: an OpenAI-compatible API, a task-aware edit endpoint and a local editor page.

One engine thread owns the model. Every request becomes a job in a bounded queue (a full queue answers
503 with Retry-After); the engine takes what is waiting and decodes edits of the same task from
different requests together (several sequences in one batch where the runtime batches), so
concurrent users share the forward passes instead of queueing behind each other. A streamed answer
is a job whose pieces flow back to its request; a client that goes away cancels its job, and the
engine moves on. Responses carry OpenAI's ``usage`` and llama-server's ``timings``; errors use
OpenAI's error shape. Loopback by default; on any other interface an API key is required and every
route but ``/health`` asks for it (``Authorization: Bearer ...``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import queue
import socket
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from edgewrite.errors import EdgewriteError

MAX_BODY_BYTES = 64 * 1024
MAX_TOKENS = 4096
QUEUE_SIZE = 64  # jobs waiting; more are answered 503
MAX_BATCH = 64  # units taken per engine pass (llama.cpp decodes 16 at a time, refilling slots)


# Request bodies live at module level: FastAPI resolves (postponed) annotations from module globals.
class Message(BaseModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    stream: bool = False
    temperature: float | None = None  # accepted for compatibility; decoding is greedy


class EditRequest(BaseModel):
    text: str = Field(min_length=1)
    task: str = "grammar"


PAGE = Path(__file__).with_name("page.html")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, port: int, api_key: str | None) -> None:
    """Before anything is loaded: a valid, free address, and a key unless it is loopback."""
    if not is_loopback(host) and not api_key:
        raise EdgewriteError(
            f"refusing to serve on {host} without an API key: pass --api-key (or set EDGEWRITE_API_KEY), "
            "or keep the default 127.0.0.1"
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise EdgewriteError(f"--host {host} is not an address this machine can listen on ({e.strerror})") from e
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind(address)
        except OSError as e:
            raise EdgewriteError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port") from e


check_port = check_host  # the name the tests and older callers use


@dataclass
class Job:
    kind: str  # "edit", "chat" or "stream"
    task: str = ""
    texts: list[str] = field(default_factory=list)
    prompt: str = ""
    max_tokens: int = 256
    future: Future = field(default_factory=Future)
    pieces: queue.Queue | None = None  # a stream's text pieces, then (None, finish_reason)
    cancelled: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.perf_counter)


def _timings(gens: list[Any], wall_s: float) -> tuple[dict, dict]:
    prompt = sum(g.prompt_tokens for g in gens)
    new = sum(g.new_tokens for g in gens)
    ttft = max((g.ttft_s for g in gens), default=0.0)
    decode = max((g.decode_s for g in gens), default=0.0)
    usage = {"prompt_tokens": prompt, "completion_tokens": new, "total_tokens": prompt + new}
    timings = {
        "prompt_n": prompt,
        "prompt_ms": round(ttft * 1000, 2),
        "predicted_n": new,
        "predicted_ms": round(decode * 1000, 2),
        "predicted_per_second": round(new / decode, 2) if decode > 0 else None,
        "total_ms": round(wall_s * 1000, 2),
    }
    return usage, timings


class Engine:
    """The one thread that runs the model; requests reach it as jobs."""

    def __init__(self, editor: Any, queue_size: int = QUEUE_SIZE, max_batch: int = MAX_BATCH) -> None:
        self.editor, self.max_batch = editor, max_batch
        self.jobs: queue.Queue[Job] = queue.Queue(maxsize=queue_size)
        self.stopped = threading.Event()
        self.finished: list[str] = []  # how the last streams ended (stop, length, cancelled), newest last
        self.thread = threading.Thread(target=self._loop, name="edgewrite-engine", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> Job:
        self.jobs.put_nowait(job)  # queue.Full: the caller answers 503
        return job

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def _take(self) -> list[Job]:
        first = self.jobs.get(timeout=0.2)
        taken = [first]
        deadline = time.perf_counter() + 0.005  # a few ms to gather requests that arrived together
        while len(taken) < self.max_batch:
            try:
                taken.append(self.jobs.get(timeout=max(0.0, deadline - time.perf_counter())))
            except queue.Empty:
                break
        return [j for j in taken if not j.cancelled.is_set()]

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                jobs = self._take()
            except queue.Empty:
                continue
            streams = [j for j in jobs if j.kind == "stream"]
            groups: dict[tuple, list[Job]] = {}
            for j in jobs:
                if j.kind != "stream":
                    groups.setdefault((j.kind, j.task, j.max_tokens), []).append(j)
            for (kind, _, _), group in groups.items():
                self._run(group, self._edits if kind == "edit" else self._chats)
            for j in streams:
                self._run([j], self._stream)

    @staticmethod
    def _run(jobs: list[Job], work: Any) -> None:
        try:
            work(jobs)
        except Exception as e:  # noqa: BLE001 - a failed request must not stop the engine
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(e)
                if j.pieces is not None:
                    j.pieces.put((None, "error"))

    def _edits(self, jobs: list[Job]) -> None:
        """Every job's sentences in one pass; a job is answered as soon as its own sentences are edited
        (a continuously batching runtime finishes them in any order), not when the whole pass ends."""
        from edgewrite.assist import edit_texts

        units: list[str] = []
        owner: list[int] = []
        start: list[int] = []
        for n, j in enumerate(jobs):
            start.append(len(units))
            units += j.texts
            owner += [n] * len(j.texts)
        left = [len(j.texts) for j in jobs]
        out = list(units)
        made: dict[int, Any] = {}
        t0 = time.perf_counter()

        def answer(n: int) -> None:
            j, a = jobs[n], start[n]
            if not j.future.done():
                mine = [made[i] for i in range(a, a + len(j.texts)) if i in made]
                j.future.set_result((out[a : a + len(j.texts)], _timings(mine, time.perf_counter() - t0)))

        def each(i: int, text: str) -> None:
            out[i] = text
            left[owner[i]] -= 1
            if left[owner[i]] == 0:
                answer(owner[i])

        out[:] = edit_texts(self.editor, units, jobs[0].task, batch_size=self.max_batch, edits=made, done=each)
        for n in range(len(jobs)):  # jobs with a unit that was not sent (no letters) end here
            answer(n)

    def _chats(self, jobs: list[Job]) -> None:
        runtime = self.editor.runtime
        t0 = time.perf_counter()
        gens = runtime.generate([j.prompt for j in jobs], max_new_tokens=jobs[0].max_tokens)
        wall = time.perf_counter() - t0
        for j, g in zip(jobs, gens, strict=True):
            j.future.set_result((g, _timings([g], wall)))

    def _stream(self, jobs: list[Job]) -> None:
        (job,) = jobs
        assert job.pieces is not None
        stream = self.editor.runtime.stream(job.prompt, max_new_tokens=job.max_tokens)
        finish = "stop"
        try:
            while True:
                if job.cancelled.is_set():  # the client went away: free the engine
                    finish = "cancelled"
                    break
                try:
                    job.pieces.put((next(stream), None))
                except StopIteration as stop:
                    finish = stop.value or "stop"
                    break
        finally:
            stream.close()
            job.pieces.put((None, finish))
            self.finished = [*self.finished[-99:], finish]


def error(status: int, message: str, kind: str = "invalid_request_error", **headers: str) -> Any:
    """An error response in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""
    from fastapi.responses import JSONResponse

    code = {400: "invalid_request", 401: "invalid_api_key", 404: "not_found", 413: "request_too_large"}
    body = {"error": {"message": message, "type": kind, "param": None, "code": code.get(status, kind)}}
    return JSONResponse(body, status_code=status, headers=headers or None)


@dataclass
class _Served:
    """What the routes share: the engine and the model it runs."""

    engine: Engine
    editor: Any
    manifest: dict
    name: str

    @property
    def style(self) -> str:
        from edgewrite.tasks import style_of

        runtime = getattr(self.editor, "runtime", None)
        return style_of(self.manifest, runtime.tokenizer) if runtime is not None else "chat"

    def enqueue(self, job: Job) -> Any:
        try:
            return self.engine.submit(job)
        except queue.Full:
            return error(503, "the server is busy; retry shortly", "server_busy", **{"Retry-After": "1"})

    @staticmethod
    async def wait(job: Job) -> Any:
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:  # the client went away before its turn
            job.cancelled.set()
            raise


def _guards(app: Any, api_key: str | None, max_body_bytes: int) -> None:
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if api_key and request.url.path != "/health":
            if request.headers.get("authorization", "") != f"Bearer {api_key}":
                return error(
                    401, "missing or wrong API key: send 'Authorization: Bearer <key>'", "authentication_error"
                )
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body_bytes:
            return error(413, f"request body over {max_body_bytes} bytes")
        if request.method == "POST" and len(await request.body()) > max_body_bytes:
            return error(413, f"request body over {max_body_bytes} bytes")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Any:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return error(400, "malformed JSON" if first.get("type") == "json_invalid" else f"{where}: {first.get('msg')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        return error(exc.status_code, str(exc.detail), "invalid_request_error")


def _info_routes(app: Any, served: _Served) -> None:
    from fastapi.responses import HTMLResponse

    @app.get("/health")
    def health() -> dict:
        return {
            "status": "ok",
            "model": served.name,
            "format": served.manifest.get("format"),
            "runtime": served.editor.name,
            "queued": served.engine.jobs.qsize(),
        }

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": served.name, "object": "model", "owned_by": "edgewrite"}]}

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")


def _chunk(rid: str, created: int, model: str, delta: dict, finish: str | None = None) -> str:
    body = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


async def _stream_events(job: Job, rid: str, created: int, model: str) -> Any:
    assert job.pieces is not None
    try:
        yield _chunk(rid, created, model, {"role": "assistant", "content": ""})
        while True:
            piece, finish = await asyncio.to_thread(job.pieces.get)
            if piece is None:
                if finish == "error":
                    yield f"data: {json.dumps({'error': {'message': 'generation failed', 'type': 'server_error'}})}\n\n"
                else:
                    yield _chunk(rid, created, model, {}, finish)
                break
            yield _chunk(rid, created, model, {"content": piece})
        yield "data: [DONE]\n\n"
    finally:
        job.cancelled.set()  # a client that disconnects mid-stream frees the engine


def _chat_route(app: Any, served: _Served) -> None:
    from fastapi.responses import StreamingResponse

    from edgewrite.tasks import chat_messages

    runtime = served.editor.runtime

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest) -> Any:
        if runtime is None:
            return error(400, f"this server runs '{served.editor.name}', a system that is not a model; use /v1/edit")
        messages = chat_messages([m.model_dump() for m in req.messages], served.style)
        try:
            prompt = runtime.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except EdgewriteError as e:
            return error(400, str(e))
        limit = req.max_completion_tokens or req.max_tokens or 256
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        kind = "stream" if req.stream else "chat"
        job = served.enqueue(Job(kind, prompt=prompt, max_tokens=limit, pieces=queue.Queue() if req.stream else None))
        if not isinstance(job, Job):
            return job
        if req.stream:
            return StreamingResponse(_stream_events(job, rid, created, served.name), media_type="text/event-stream")
        try:
            gen, (usage, timings) = await served.wait(job)
        except EdgewriteError as e:
            return error(400, str(e))
        choice = {"index": 0, "message": {"role": "assistant", "content": gen.text}, "finish_reason": gen.finish}
        return {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": served.name,
            "choices": [choice],
            "usage": usage,
            "timings": timings,
        }


def _edit_route(app: Any, served: _Served) -> None:
    from edgewrite.assist import piece_suggestions
    from edgewrite.edit.text import segment, word_diff
    from edgewrite.tasks import TASKS

    @app.post("/v1/edit")
    async def edit(req: EditRequest) -> Any:
        if req.task not in TASKS:
            return error(400, f"unknown task '{req.task}'; tasks: {', '.join(TASKS)}")
        if not req.text.strip():
            return error(400, "text is empty")
        pieces = segment(req.text, TASKS[req.task].unit)
        editable = [i for i, p in enumerate(pieces) if p.editable]
        job = served.enqueue(Job("edit", task=req.task, texts=[pieces[i].text for i in editable]))
        if not isinstance(job, Job):
            return job
        try:
            edited, (usage, timings) = await served.wait(job)
        except EdgewriteError as e:
            return error(400, str(e))
        out = [p.text for p in pieces]
        for i, text in zip(editable, edited, strict=True):
            out[i] = text
        output = "".join(out)
        diff = word_diff(req.text, output)
        edits = [s.to_dict() for s in piece_suggestions(pieces, out)]  # spans in code points of "input"
        return {
            "task": req.task,
            "input": req.text,
            "output": output,
            "edits": edits,
            "diff": diff,
            "usage": usage,
            "timings": timings,
        }


def create_app(
    editor: Any,
    manifest: dict,
    model_name: str,
    max_body_bytes: int = MAX_BODY_BYTES,
    api_key: str | None = None,
    queue_size: int = QUEUE_SIZE,
    max_batch: int = MAX_BATCH,
) -> Any:
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    served = _Served(Engine(editor, queue_size=queue_size, max_batch=max_batch), editor, manifest, model_name)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        served.engine.close()

    app = FastAPI(title="edgewrite", version="1", lifespan=lifespan)
    app.state.engine = served.engine
    _guards(app, api_key, max_body_bytes)
    _info_routes(app, served)
    _chat_route(app, served)
    _edit_route(app, served)
    return app


def serve(
    model_path: Path,
    host: str,
    port: int,
    device: str = "cpu",
    pre: str | None = None,
    api_key: str | None = None,
    queue_size: int = QUEUE_SIZE,
    max_batch: int = MAX_BATCH,
    editor_args: dict | None = None,
) -> None:
    import uvicorn

    from edgewrite.edit import load_editor

    api_key = api_key or os.environ.get("EDGEWRITE_API_KEY") or None
    check_host(host, port, api_key)
    editor, manifest = load_editor(model_path, device=device, pre=pre, **(editor_args or {}))
    app = create_app(
        editor, manifest, model_name=model_path.name, api_key=api_key, queue_size=queue_size, max_batch=max_batch
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
