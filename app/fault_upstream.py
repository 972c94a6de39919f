"""A fault-injecting OpenAI-compatible upstream over a real socket, for the fault suite (tests/faults) and by hand
(`python -m app.fault_upstream --port 9100`, then point `heedful serve --upstream` at it).

It speaks HTTP/1.1 by hand on asyncio streams, so it can misbehave as no framework would: hang before the headers,
drip a byte a second, reset the connection, send garbage or the wrong JSON shape, or a reply far past any cap. The
request's model name picks the fault, "fault:<name>" (see FAULTS); any other model gets a correct reply. Every
connection is recorded (the fault, the request's headers and body, the bytes written, when the peer closed it), so a
test can see that the proxy gave up on the upstream, not only that the client got its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from app.local_server import free_port
from app.repair_prompt import is_repair_request
from app.scripted_upstream import draft_for

FAULTS = {
    "none": "a correct reply",
    "hang_headers": "reads the request, then sends nothing",
    "drip": "the whole response, status line included, one byte per drip interval",
    "drip_body": "headers at once, then the body one byte per drip interval",
    "hang_mid": "headers and the first chunks, then nothing",
    "hang_late": "the whole text, then nothing (no finish_reason, no [DONE]): the client has read it all and waits",
    "reset": "reads the request, then resets the connection",
    "reset_mid": "headers and the first chunks, then a reset",
    "garbage": "bytes that are not HTTP",
    "garbage_body": "a 200 whose body is not JSON or server-sent events",
    "wrong_shape": 'a 200 of the wrong shape: {"choices":[1]}, or the chunk {"choices":[null]}',
    "huge": "a well-formed reply of `huge_bytes` bytes",
    "surrogate": "a reply whose text holds a lone surrogate (\\ud800)",
    "no_done": "a complete stream (finish_reason on every choice) without the [DONE] line",
    "cut_no_finish": "a stream that ends cleanly before any finish_reason or [DONE]",
    "drip_repair": "a correct first draft, then each repair call (guidance in any placement) dripped",
    "rate_limited": "429 with retry-after and x-ratelimit-* headers",
    "overloaded": "503 with retry-after",
    "limits": "a correct reply carrying x-ratelimit-* headers, as OpenAI sends on every answer",
}


@dataclass
class Connection:
    fault: str
    headers: dict[str, str]
    body: dict[str, Any]
    opened: float = field(default_factory=time.monotonic)
    sent: int = 0
    peer_closed: float | None = None  # when the proxy closed its side


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
    payload = {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
               "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _completion(model: str, text: str) -> bytes:
    return json.dumps({"id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()), "model": model,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop"}]}).encode()


RATE_LIMITS = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499",
               "x-ratelimit-reset-requests": "120ms"}


def _head(status: str, extra: dict[str, str] | None = None, length: int | None = None, sse: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"content-type: {'text/event-stream' if sse else 'application/json'}",
             "connection: close", *(f"{k}: {v}" for k, v in (extra or {}).items())]
    if length is not None:
        lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class FaultUpstream:
    """The server, run on its own event loop in a background thread (`with FaultUpstream() as upstream:`)."""

    def __init__(self, drip_interval_s: float = 1.0, huge_bytes: int = 64 * 1024 * 1024, port: int | None = None) -> None:
        self.drip_interval_s, self.huge_bytes = drip_interval_s, huge_bytes
        self.port = port or free_port()
        self.connections: list[Connection] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultUpstream:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"fault upstream on port {self.port} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def for_fault(self, fault: str) -> list[Connection]:
        return [c for c in list(self.connections) if c.fault == fault]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # a proxy that gave up mid-request: nothing to answer
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines if line)}
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        body: dict[str, Any] = json.loads(raw) if raw else {}
        model = str(body.get("model", ""))
        fault = model.split("fault:", 1)[1] if "fault:" in model else "none"
        connection = Connection(fault, headers, body)
        self.connections.append(connection)
        if request_line.startswith("GET"):
            await self._write(writer, connection, _head("200 OK") + b'{"object":"list","data":[]}')
            return
        answer = asyncio.ensure_future(self._answer(fault, body, writer, connection))
        peer = asyncio.ensure_future(reader.read())  # b"" once the proxy closes its side
        await asyncio.wait({answer, peer}, return_when=asyncio.FIRST_COMPLETED)
        if peer.done():
            connection.peer_closed = time.monotonic()
            answer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await answer
        if not peer.done():
            # Answered: end the body (connection: close), then wait briefly to see the proxy close its side, so a test
            # can tell a finished read from an abandoned one.
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof() and not writer.is_closing():
                    writer.write_eof()
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(peer, 2)
                connection.peer_closed = time.monotonic()
        peer.cancel()

    async def _write(self, writer: asyncio.StreamWriter, connection: Connection, data: bytes) -> None:
        writer.write(data)
        connection.sent += len(data)
        await writer.drain()

    async def _drip(self, writer: asyncio.StreamWriter, connection: Connection, data: bytes) -> None:
        for offset in range(len(data)):
            await self._write(writer, connection, data[offset:offset + 1])
            await asyncio.sleep(self.drip_interval_s)

    def _reset(self, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _answer(self, fault: str, body: dict[str, Any], writer: asyncio.StreamWriter, connection: Connection) -> None:
        model = str(body.get("model", "fault"))
        stream = bool(body.get("stream"))
        text = draft_for(body.get("messages") or [])
        good = b"".join(self._sse(model, text)) if stream else _completion(model, text)
        limits = RATE_LIMITS if fault == "limits" else None
        ok_head = _head("200 OK", limits, sse=stream, length=None if stream else len(good))
        messages = body.get("messages") or []
        repairing = is_repair_request(messages)
        if fault == "hang_headers":
            await asyncio.Event().wait()
        elif fault == "drip_repair" and repairing:
            await self._drip(writer, connection, ok_head + good)
        elif fault == "drip":
            await self._drip(writer, connection, ok_head + good)
        elif fault == "drip_body":
            await self._write(writer, connection, ok_head)
            await self._drip(writer, connection, good)
        elif fault in ("hang_mid", "reset_mid"):
            await self._write(writer, connection, _head("200 OK", sse=stream) + good[: len(good) // 3])
            if fault == "reset_mid":
                self._reset(writer)
                return
            await asyncio.Event().wait()
        elif fault == "hang_late":
            pieces = self._sse(model, text)[:-2] if stream else [good[:-20]]
            await self._write(writer, connection, _head("200 OK", sse=stream) + b"".join(pieces))
            await asyncio.Event().wait()
        elif fault == "reset":
            self._reset(writer)
        elif fault == "garbage":
            await self._write(writer, connection, b"\x00\xff\xfe GARBAGE NOT HTTP \x13\x37\r\n\r\n" * 8)
        elif fault == "garbage_body":
            junk = b"data: }{ not json \xff\n\n" if stream else b"<html>not json</html>"
            await self._write(writer, connection, _head("200 OK", sse=stream, length=None if stream else len(junk)) + junk)
        elif fault == "wrong_shape":
            shaped = b'data: {"choices":[null]}\n\ndata: [DONE]\n\n' if stream else b'{"choices":[1]}'
            await self._write(writer, connection, _head("200 OK", sse=stream, length=None if stream else len(shaped)) + shaped)
        elif fault == "huge":
            await self._write(writer, connection, _head("200 OK", sse=stream))
            async for piece in self._huge(model, stream):
                await self._write(writer, connection, piece)
        elif fault == "surrogate":
            raw = good.replace(b"Thanks", b"Thanks \\ud800")
            await self._write(writer, connection, _head("200 OK", sse=stream, length=None if stream else len(raw)) + raw)
        elif fault == "no_done":
            await self._write(writer, connection, ok_head + good.replace(b"data: [DONE]\n\n", b""))
        elif fault == "cut_no_finish":
            pieces = self._sse(model, text)[:-2]  # no finish chunk, no [DONE]
            await self._write(writer, connection, _head("200 OK", sse=True) + b"".join(pieces))
        elif fault in ("rate_limited", "overloaded"):
            status, message = ("429 Too Many Requests", "rate limit reached") if fault == "rate_limited" else (
                "503 Service Unavailable", "overloaded")
            error = json.dumps({"error": {"message": message, "type": "requests", "param": None, "code": fault}}).encode()
            extra = {"retry-after": "7", "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                     "x-ratelimit-reset-requests": "7s"} if fault == "rate_limited" else {"retry-after": "3"}
            await self._write(writer, connection, _head(status, extra, len(error)) + error)
        else:
            await self._write(writer, connection, ok_head + good)

    @staticmethod
    def _sse(model: str, text: str) -> list[bytes]:
        words = text.split(" ")
        return [_chunk(model, {"role": "assistant", "content": ""}),
                *(_chunk(model, {"content": w + (" " if i < len(words) - 1 else "")}) for i, w in enumerate(words)),
                _chunk(model, {}, "stop"), b"data: [DONE]\n\n"]

    async def _huge(self, model: str, stream: bool) -> AsyncIterator[bytes]:
        """`huge_bytes` of well-formed reply, made as it is sent (the server never holds it either)."""
        filler = "word " * 12_000
        if not stream:
            yield b'{"id":"chatcmpl-fault","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,' \
                  b'"message":{"role":"assistant","content":"'
        sent = 0
        while sent < self.huge_bytes:
            piece = _chunk(model, {"content": filler}) if stream else filler.encode()
            sent += len(piece)
            yield piece
        yield _chunk(model, {}, "stop") + b"data: [DONE]\n\n" if stream else b'"},"finish_reason":"stop"}]}'


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Fault-injecting OpenAI-compatible upstream; model 'fault:<name>' picks "
                                     "the fault: " + ", ".join(FAULTS))
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--drip-interval-s", type=float, default=1.0)
    parser.add_argument("--huge-bytes", type=int, default=64 * 1024 * 1024)
    args = parser.parse_args()
    with FaultUpstream(args.drip_interval_s, args.huge_bytes, args.port) as upstream:
        print(f"fault upstream on {upstream.url}/v1; faults: {', '.join(FAULTS)}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
