"""A small real HTTP server standing in for a remote TTS engine (what we do not own and cannot run here):
an OpenAI-compatible ``POST /v1/audio/speech`` and a Coqui ``tts-server`` ``GET /api/tts``. It answers
a tone of a plausible length for the text, and can be told to fail: ``500``, ``garbage``, ``slow``,
``silence``, ``fail_then_ok`` (500 for the first N requests), or ``ok_then_fail`` (answers N requests,
then 500: an engine failing in the middle of a long text)."""

from __future__ import annotations

import io
import json
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

RATE = 24_000


def tone_wav(words: int, silent: bool = False) -> bytes:
    seconds = 0.3 * max(1, words)
    t = np.arange(int(RATE * seconds)) / RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)  # syllable-like swells
    samples = np.zeros_like(t) if silent else 12_000 * envelope * np.sin(2 * np.pi * 220 * t)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


class FakeUpstream:
    def __init__(self) -> None:
        self.mode = "ok"
        self.fail_count = 0
        self.ok_count = 0
        self.fail_voice = ""  # when set, the failure modes apply to this voice only
        self.slow_s = 5.0
        self.requests: list[dict] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _answer(self, text: str, voice: str = "") -> None:
                upstream.requests.append({"method": self.command, "path": self.path, "text": text, "voice": voice})
                mode = upstream.mode
                if upstream.fail_voice and voice != upstream.fail_voice:
                    mode = "ok"  # only that voice misbehaves
                if mode == "fail_then_ok" and upstream.fail_count > 0:
                    upstream.fail_count -= 1
                    mode = "500"
                if mode == "ok_then_fail":
                    upstream.ok_count -= 1
                    mode = "ok" if upstream.ok_count >= 0 else "500"
                if mode == "slow_after" and upstream.ok_count > 0:
                    upstream.ok_count -= 1
                    mode = "ok"
                elif mode == "slow_after":
                    mode = "slow"
                if mode == "500":
                    return self._send(500, b'{"detail": "model crashed"}', "application/json")
                if mode == "garbage":
                    return self._send(200, b"<html>definitely not audio</html>" * 20, "audio/wav")
                if mode == "slow":
                    time.sleep(upstream.slow_s)
                body = tone_wav(len(text.split()), silent=(mode == "silence"))
                self._send(200, body, "audio/wav")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

            def do_POST(self) -> None:
                if urlparse(self.path).path != "/v1/audio/speech":
                    return self._send(404, b"{}", "application/json")
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                upstream.last_json = body
                self._answer(body.get("input", ""), body.get("voice", ""))

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                if parsed.path != "/api/tts":
                    return self._send(404, b"{}", "application/json")
                self._answer(parse_qs(parsed.query).get("text", [""])[0])

        self.last_json: dict = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeUpstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
