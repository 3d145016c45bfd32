"""A scripted OpenAI-compatible chat-completions server on loopback (tests/ and bench/).

It speaks the streaming wire format the ``openai`` client parses (SSE chunks with
``delta.content`` / ``delta.tool_calls``, a usage chunk, ``[DONE]``), so the agent's real
``openai.LLM`` plugin runs unchanged. Replies are chosen by rules over the conversation;
every request body is recorded for assertions (system prompt, tools offered).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class CallTool:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    text_before: str = ""  # spoken before the tool call, in the same assistant turn


Reply = Say | CallTool


@dataclass
class Rule:
    """Answer ``reply`` when the last message has ``role`` and its text matches ``pattern``."""

    pattern: str
    reply: Reply
    role: str = "user"  # "user" or "tool" (the turn after a tool result)

    def matches(self, message: dict[str, Any]) -> bool:
        if message.get("role") != self.role:
            return False
        return re.search(self.pattern, _text(message), re.IGNORECASE) is not None


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


class ScriptedLLM:
    def __init__(self, rules: list[Rule] | None = None, *, default: Reply = Say("Could you say that again?")):
        self.rules: list[Rule] = list(rules or [])
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.first_token_delay_s = 0.0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ids = iter(range(1, 1_000_000))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, rules: list[Rule], *, default: Reply | None = None) -> None:
        self.rules = list(rules)
        if default is not None:
            self.default = default
        self.requests.clear()

    def choose(self, messages: list[dict[str, Any]]) -> Reply:
        last = messages[-1] if messages else {}
        for rule in self.rules:
            if rule.matches(last):
                return rule.reply
        if last.get("role") == "tool":
            return Say("Okay.")
        return self.default

    # --- server ---------------------------------------------------------------------
    def start(self) -> ScriptedLLM:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._completions)
            app.router.add_get("/v1/models", self._models)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="llm-double", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise TimeoutError("LLM double did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        reply = self.choose(body.get("messages", []))
        model = body.get("model", "scripted")
        cid = f"chatcmpl-{next(self._ids)}"
        if not body.get("stream"):
            return web.json_response(_full_completion(cid, model, reply))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        if self.first_token_delay_s:
            await asyncio.sleep(self.first_token_delay_s)
        for chunk in _stream_chunks(cid, model, reply):
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _stream_chunks(cid: str, model: str, reply: Reply) -> list[dict[str, Any]]:
    chunks = [_chunk(cid, model, {"role": "assistant", "content": ""})]
    text = reply.text if isinstance(reply, Say) else reply.text_before
    # word-sized deltas, as a real server streams tokens
    for word in re.findall(r"\S+\s*", text):
        chunks.append(_chunk(cid, model, {"content": word}))
    if isinstance(reply, CallTool):
        call = {
            "index": 0,
            "id": f"call_{cid}",
            "type": "function",
            "function": {"name": reply.name, "arguments": json.dumps(reply.arguments)},
        }
        chunks.append(_chunk(cid, model, {"tool_calls": [call]}))
        chunks.append(_chunk(cid, model, {}, "tool_calls"))
    else:
        chunks.append(_chunk(cid, model, {}, "stop"))
    n = max(1, len(text.split()))
    chunks.append(
        {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": {"prompt_tokens": 50, "completion_tokens": n, "total_tokens": 50 + n},
        }
    )
    return chunks


def _full_completion(cid: str, model: str, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text if isinstance(reply, Say) else reply.text_before}
    finish = "stop"
    if isinstance(reply, CallTool):
        message["tool_calls"] = [
            {"id": f"call_{cid}", "type": "function", "function": {"name": reply.name, "arguments": json.dumps(reply.arguments)}}
        ]
        finish = "tool_calls"
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55},
    }


def tools_offered(request: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools", []) if t.get("type") == "function"}


