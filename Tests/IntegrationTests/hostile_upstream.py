"""A scriptable hostile upstream for tests: a raw-socket HTTP/1.1 server on 127.0.0.1 (free port)
that answers each request with exactly the bytes a test scripted: status line, headers (a lying
`content-length` included), body pieces with delays, stalls, and a clean or abrupt close.

    with HostileUpstream() as upstream:
        upstream.respond(Script().send(b"HTTP/1.1 200 OK\\r\\n...").sleep(0.1).send(b"...").reset())
        ... send a request through Envoy ...

Every script runs once, for the next request the server reads (FIFO); a request with no script
gets `unscripted` (a 500). Connections are closed after each script, so Envoy never reuses a
connection whose bytes a script left in a strange state. Everything is bounded in time: a stall
lasts at most `max_stall` seconds and ends early when the server stops; `stop()` closes every
connection and joins the threads.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field


# MARK: - Scripts


@dataclass
class Script:
    """What the upstream does for one request, step by step."""

    steps: list = field(default_factory=list)
    name: str = ""

    def send(self, data: bytes) -> "Script":
        self.steps.append(("send", bytes(data)))
        return self

    def sleep(self, seconds: float) -> "Script":
        self.steps.append(("sleep", float(seconds)))
        return self

    def stall(self) -> "Script":
        """Sends nothing more until the peer goes away or the server stops (at most `max_stall`)."""
        self.steps.append(("stall", None))
        return self

    def close(self) -> "Script":
        """An orderly close (FIN)."""
        self.steps.append(("close", None))
        return self

    def reset(self) -> "Script":
        """An abrupt close (RST: SO_LINGER 0)."""
        self.steps.append(("reset", None))
        return self


def response_head(status: int = 200, headers: list[tuple[str, str]] | None = None, reason: str | None = None) -> bytes:
    """A status line and headers, byte for byte as given (no header is added)."""
    reason = reason if reason is not None else {200: "OK", 400: "Bad Request", 429: "Too Many Requests",
                                                 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "X")
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def full_response(body: bytes, *, status: int = 200, content_type: str = "application/json",
                  content_length: int | None = None, extra_headers: list[tuple[str, str]] | None = None) -> Script:
    """A complete response with a `content-length` (the true one unless given) and `connection: close`."""
    length = len(body) if content_length is None else content_length
    headers = [("content-type", content_type), ("content-length", str(length)), ("connection", "close")]
    return Script().send(response_head(status, headers + (extra_headers or [])) + body).close()


def streamed_response(pieces: list[bytes], *, status: int = 200, content_type: str = "text/event-stream",
                      delay: float = 0.0, chunked: bool = True, end: str = "finish",
                      extra_headers: list[tuple[str, str]] | None = None) -> Script:
    """A streamed response, one HTTP/1.1 chunk per piece (or raw bytes until close when
    `chunked` is false), `delay` seconds apart. `end`: "finish" (the last chunk, then close),
    "close" (FIN without the last chunk), "reset" (RST), or "stall" (nothing more)."""
    headers = [("content-type", content_type), ("connection", "close")]
    if chunked:
        headers.append(("transfer-encoding", "chunked"))
    script = Script().send(response_head(status, headers + (extra_headers or [])))
    for index, piece in enumerate(pieces):
        if delay and index:
            script.sleep(delay)
        if not piece:
            continue
        script.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
    if end == "finish":
        if chunked:
            script.send(b"0\r\n\r\n")
        return script.close()
    if end == "trailers":
        assert chunked, "trailers need chunked framing"
        return script.send(b"0\r\nx-upstream-trailer: done\r\n\r\n").close()
    if end == "close":
        return script.close()
    if end == "reset":
        return script.reset()
    if end == "stall":
        return script.stall()
    raise ValueError(end)


# MARK: - AWS event-stream frames (independent of the Swift encoder)


def event_stream_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def event_stream_frame(headers: list[tuple[str, str]], payload: bytes, *, total_length: int | None = None,
                       headers_length: int | None = None, prelude_crc: int | None = None,
                       message_crc: int | None = None) -> bytes:
    """One `application/vnd.amazon.eventstream` message with both CRCs; any field may be forced
    to a lie (the CRCs are then computed over the lying prelude unless given too)."""
    block = b"".join(event_stream_header(name, value) for name, value in headers)
    total = 16 + len(block) + len(payload) if total_length is None else total_length
    header_count = len(block) if headers_length is None else headers_length
    prelude = struct.pack(">II", total, header_count)
    prelude += struct.pack(">I", zlib.crc32(prelude) if prelude_crc is None else prelude_crc)
    message = prelude + block + payload
    return message + struct.pack(">I", zlib.crc32(message) if message_crc is None else message_crc)


def bedrock_event(event_type: str, payload: dict | bytes, **lies) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    headers = [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")]
    return event_stream_frame(headers, body, **lies)


# MARK: - The server


class HostileUpstream:
    """The server. `respond(script)` queues the answer to the next request; `requests` records
    what arrived (method, path, headers, body)."""

    def __init__(self, *, max_stall: float = 20.0, read_timeout: float = 10.0) -> None:
        self.max_stall = max_stall
        self.read_timeout = read_timeout
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.scripts: deque[Script] = deque()
        self.requests: list[dict] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept_loop, name="hostile-upstream", daemon=True)

    # -- test API

    def respond(self, *scripts: Script) -> None:
        """The scripts for the next requests, replacing any a previous test left unconsumed."""
        with self.lock:
            self.scripts.clear()
            self.scripts.extend(scripts)

    def pending(self) -> int:
        with self.lock:
            return len(self.scripts)

    def last_request(self) -> dict | None:
        with self.lock:
            return self.requests[-1] if self.requests else None

    def start(self) -> "HostileUpstream":
        self.acceptor.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                connection.close()
            except OSError:
                pass
        self.acceptor.join(timeout=5)
        for thread in list(self.threads):
            thread.join(timeout=5)

    def __enter__(self) -> "HostileUpstream":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- serving

    def _accept_loop(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections.add(connection)
                self.threads = [t for t in self.threads if t.is_alive()]
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            connection.settimeout(self.read_timeout)
            request = self._read_request(connection)
            if request is None:
                return
            with self.lock:
                self.requests.append(request)
                script = self.scripts.popleft() if self.scripts else None
            if script is None:
                body = b'{"error":"unscripted"}'
                script = full_response(body, status=500)
            self._run(connection, script)
        except OSError as error:
            # Envoy hanging up while a script runs is part of the game (stalls, timeouts).
            self.errors.append(repr(error))
        finally:
            with self.lock:
                self.connections.discard(connection)
            try:
                connection.close()
            except OSError:
                pass

    def _run(self, connection: socket.socket, script: Script) -> None:
        for kind, argument in script.steps:
            if self.stopping.is_set():
                return
            if kind == "send":
                connection.sendall(argument)
            elif kind == "sleep":
                self.stopping.wait(argument)
            elif kind == "stall":
                # Until Envoy hangs up (recv returns b"" or fails), the server stops, or max_stall.
                deadline = time.monotonic() + self.max_stall
                connection.settimeout(0.1)
                while not self.stopping.is_set() and time.monotonic() < deadline:
                    try:
                        if connection.recv(65536) == b"":
                            return
                    except socket.timeout:
                        continue
                    except OSError:
                        return
                return
            elif kind == "close":
                try:
                    connection.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            elif kind == "reset":
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
        # A script that ends without saying how: an orderly close.

    @staticmethod
    def _read_request(connection: socket.socket) -> dict | None:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = connection.recv(65536)
            if not piece:
                return None
            data += piece
            if len(data) > 1 << 20:
                raise OSError("request head over 1 MiB")
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            buffer = rest
            while True:
                while b"\r\n" not in buffer:
                    piece = connection.recv(65536)
                    if not piece:
                        return None
                    buffer += piece
                size_line, _, buffer = buffer.partition(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                while len(buffer) < size + 2:
                    piece = connection.recv(65536)
                    if not piece:
                        return None
                    buffer += piece
                if size == 0:
                    break
                body += buffer[:size]
                buffer = buffer[size + 2 :]
        else:
            length = int(headers.get("content-length") or 0)
            body = rest
            while len(body) < length:
                piece = connection.recv(65536)
                if not piece:
                    return None
                body += piece
            body = body[:length]
        return {"method": method, "path": path, "headers": headers, "body": body}


# MARK: - A raw client (what the gateway's client receives, byte for byte, within a deadline)


@dataclass
class RawResponse:
    status: int
    headers: dict
    body: bytes
    complete: bool  # the body ended as its framing said (content-length reached / last chunk)
    elapsed: float
    timed_out: bool = False

    def json(self):
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def http_request(port: int, path: str, body: bytes, headers: dict | list[tuple[str, str]] | None = None, *,
                 method: str = "POST", deadline: float = 20.0) -> RawResponse:
    """One request with `connection: close`; reads until Envoy closes or `deadline` seconds pass.
    A response that never starts raises TimeoutError; a body cut anywhere is returned as it is.
    `headers` as a list of pairs sends a name on several lines."""
    started = time.monotonic()
    lines = [f"{method} {path} HTTP/1.1", "host: gateway", "connection: close"]
    for name, value in (headers.items() if isinstance(headers, dict) else headers or []):
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"content-length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    data = b""
    timed_out = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        while True:
            remaining = deadline - (time.monotonic() - started)
            if remaining <= 0:
                timed_out = True
                break
            connection.settimeout(min(remaining, 1.0))
            try:
                piece = connection.recv(1 << 20)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not piece:
                break
            data += piece
            if _framed_response_complete(data):
                break  # no need to wait for Envoy's (delayed) close
    elapsed = time.monotonic() - started
    if b"\r\n\r\n" not in data:
        if timed_out:
            raise TimeoutError(f"no response head within {deadline}s (got {data[:200]!r})")
        raise ConnectionError(f"connection closed before a response head: {data[:200]!r}")
    head, _, rest = data.partition(b"\r\n\r\n")
    head_lines = head.decode("latin-1").split("\r\n")
    status = int(head_lines[0].split(" ")[1])
    response_headers: dict[str, str] = {}
    for line in head_lines[1:]:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    if "chunked" in response_headers.get("transfer-encoding", "").lower():
        body_out, complete = dechunk(rest)
    elif "content-length" in response_headers:
        length = int(response_headers["content-length"])
        body_out, complete = rest[:length], len(rest) >= length
    else:
        body_out, complete = rest, not timed_out
    return RawResponse(status, response_headers, body_out, complete and not timed_out, elapsed, timed_out)


def _framed_response_complete(data: bytes) -> bool:
    head, separator, rest = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    lowered = head.lower()
    if b"transfer-encoding: chunked" in lowered:
        return dechunk(rest)[1]
    for line in lowered.split(b"\r\n")[1:]:
        if line.startswith(b"content-length:"):
            try:
                return len(rest) >= int(line.split(b":", 1)[1].strip())
            except ValueError:
                return False
    return False


def dechunk(data: bytes) -> tuple[bytes, bool]:
    """Chunked transfer coding to bytes; (what arrived, whether the last chunk did)."""
    out = b""
    while True:
        line, separator, rest = data.partition(b"\r\n")
        if not separator:
            return out, False
        try:
            size = int(line.split(b";")[0].strip() or b"x", 16)
        except ValueError:
            return out, False
        if size == 0:
            return out, True
        out += rest[:size]
        if len(rest) < size + 2:
            return out, False
        data = rest[size + 2 :]
