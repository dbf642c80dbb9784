"""A local OpenAI-compatible chat server for tests, benchmarks and trying `writer=openai`.

It speaks the chat-completions protocol on 127.0.0.1 and builds every answer from the request
it receives: it reads the scenario brief out of the prompt (the ```json block the scenario
template renders) and composes the script with the offline composer. Faults can be injected
per scenario index so the client's retry, repair and reject paths meet real HTTP:

  http_500 / http_429 / slow    first attempt fails (500; 429 with Retry-After; an answer
                                slower than the client's timeout), later attempts succeed
  http_500_always               every attempt answers 500
  malformed_json                broken JSON text        wrong_schema   valid JSON, other shape
  wrong_language                right fields, text in the other language
  truncated                     half the JSON, finish_reason "length"
  repairable                    wrong shape first, a good answer to the repair request

With `n_ctx` it behaves like a llama.cpp server with that context per slot: `GET /props`
publishes it, and a request whose prompt (counted as characters / 4) reaches it is answered
with llama.cpp's 400 `exceed_context_size_error`.

`python -m pipeline.devserver --port 8000 --latency-ms 200` serves until interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pipeline.schema import Phenomena, ScenarioSpec, SpeakerSpec
from pipeline.writers.offline import OfflineComposer

FAULTS = ("ok", "http_500", "http_429", "slow", "http_500_always", "malformed_json",
          "wrong_schema", "wrong_language", "truncated", "repairable")
_BRIEF = re.compile(r"```json\s*(\{.*\})\s*```", re.DOTALL)
_INDEX = re.compile(r"dlg-(\d+)-")


def brief_of(messages: list[dict]) -> tuple[dict, bool]:
    """The scenario brief of the last user message holding one; True if a repair came after."""
    users = [m for m in messages if m.get("role") == "user"]
    for position in range(len(users) - 1, -1, -1):
        match = _BRIEF.search(str(users[position].get("content", "")))
        if match:
            return json.loads(match.group(1)), position < len(users) - 1
    raise ValueError("no scenario brief in the messages")


def compose(brief: dict, language: str | None = None) -> str:
    """A script for the brief from the offline composer; `language` swaps the phrase bank."""
    seed = int(hashlib.sha1(brief["scenario_id"].encode()).hexdigest()[:12], 16)
    spec = ScenarioSpec(
        id=brief["scenario_id"], index=0, language=language or brief["language"],
        domain=brief["domain"], situation=brief["situation"],
        speakers=[SpeakerSpec(**s) for s in brief["speakers"]], assistant=brief["assistant"],
        target_turns=brief["target_turns"], phenomena=Phenomena(**brief["phenomena"]), seed=seed,
    )
    script = OfflineComposer().write(spec)
    return script.model_copy(update={"language": brief["language"]}).model_dump_json()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default 5 drops connections under 64 concurrent clients


class ChatServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port>; `faults(index) -> mode`."""

    def __init__(self, latency_s: float = 0.0, faults: dict[int, str] | None = None,
                 api_key: str | None = None, slow_s: float = 3.0, retry_after_s: int = 1,
                 json_schema: bool = True, port: int = 0, n_ctx: int | None = None) -> None:
        self.latency_s = latency_s
        self.faults: Callable[[int], str] = (faults or {}).get  # type: ignore[assignment]
        self.api_key = api_key
        self.slow_s = slow_s
        self.retry_after_s = retry_after_s
        self.json_schema = json_schema
        self.n_ctx = n_ctx
        self.attempts: Counter[tuple[str, bool]] = Counter()
        self.log: list[dict] = []
        self.requests_seen: list[dict] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> ChatServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever: only if it runs
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mode(self, scenario_id: str) -> str:
        match = _INDEX.search(scenario_id)
        return (self.faults(int(match.group(1))) if match else None) or "ok"

    def answer(self, body: dict) -> tuple[int, dict, dict]:
        """(status, headers, JSON body) for one chat-completions request."""
        if not self.json_schema and (body.get("response_format") or {}).get("type") == \
                "json_schema":
            return 400, {}, {"error": {"message": "response_format json_schema is not "
                                       "supported", "type": "invalid_request_error"}}
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body["messages"])
        if self.n_ctx is not None and prompt_chars // 4 >= self.n_ctx:
            return 400, {}, {"error": {"code": 400, "type": "exceed_context_size_error",
                                       "message": f"request ({prompt_chars // 4} tokens) "
                                       f"exceeds the available context size ({self.n_ctx} "
                                       "tokens), try increasing it"}}
        brief, repair = brief_of(body["messages"])
        scenario_id = brief["scenario_id"]
        mode = self.mode(scenario_id)
        with self._lock:
            self.attempts[(scenario_id, repair)] += 1
            attempt = self.attempts[(scenario_id, repair)]
            self.log.append({"scenario_id": scenario_id, "mode": mode, "repair": repair,
                             "attempt": attempt, "t": time.monotonic()})
        first = attempt == 1 and not repair
        if self.latency_s:
            time.sleep(self.latency_s)
        if mode == "http_500_always" or (mode == "http_500" and first):
            return 500, {}, {"error": {"message": "internal error", "type": "server_error"}}
        if mode == "http_429" and first:
            return 429, {"Retry-After": str(self.retry_after_s)}, {
                "error": {"message": "rate limited", "type": "rate_limit_error"}}
        if mode == "slow" and first:
            time.sleep(self.slow_s)
        finish = "stop"
        if mode == "malformed_json":
            content = compose(brief).replace('":', '" ', 1)
        elif mode == "wrong_schema" or (mode == "repairable" and not repair):
            content = json.dumps({"dialogue": [{"who": s["name"], "says": "hello"}
                                               for s in brief["speakers"]]})
        elif mode == "wrong_language":
            other = {"hu": "en", "en": "hu"}[brief["language"]]
            content = compose(brief, language=other)
        elif mode == "truncated":
            full = compose(brief)
            content, finish = full[: len(full) // 2], "length"
        else:
            content = compose(brief)
        usage = {"prompt_tokens": prompt_chars // 4, "completion_tokens": len(content) // 4}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return 200, {}, {
            "id": f"chatcmpl-{scenario_id}-{attempt}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "devserver"),
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content}}],
            "usage": usage,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes; without this, Nagle + delayed ACK
                # add ~40 ms to every answer
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _send(self, status: int, headers: dict, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") == "/props" and server.n_ctx is not None:
                    self._send(200, {}, {"default_generation_settings": {"n_ctx": server.n_ctx},
                                         "total_slots": 1})
                elif self.path.rstrip("/").endswith("/models"):
                    self._send(200, {}, {"object": "list", "data": [
                        {"id": "devserver", "object": "model", "owned_by": "duplexsynth"}]})
                else:
                    self._send(404, {}, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if server.api_key is not None and \
                        self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._send(401, {}, {"error": {"message": "invalid api key",
                                                   "type": "invalid_request_error"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {}, {"error": {"message": "not found"}})
                    return
                try:
                    body = json.loads(raw)
                    with server._lock:
                        server.requests_seen.append(body)
                    status, headers, answer = server.answer(body)
                except (ValueError, KeyError) as error:
                    status, headers, answer = 400, {}, {"error": {"message": str(error)}}
                self._send(status, headers, answer)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    server = ChatServer(latency_s=args.latency_ms / 1000, port=args.port).start()
    print(f"serving chat completions at {server.base_url} (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
