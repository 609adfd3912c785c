"""An engine on another machine, over HTTP (httpx): any OpenAI-compatible ``/v1/audio/speech`` server
(``EXTERNAL_API=openai``: Kokoro-FastAPI, openedai-speech, another ef speech functions, …) or a Coqui
``tts-server`` (``EXTERNAL_API=coqui``: ``GET /api/tts``).

- Voices are configured (``EXTERNAL_VOICES=name=language,…``), so start-up never waits on the network.
- Each attempt has ``EXTERNAL_TIMEOUT_S``. Connection errors, timeouts and 5xx answers are retried
  ``EXTERNAL_RETRIES`` times with exponential backoff (tenacity). A 4xx, or an answer that is not WAV
  audio, fails at once: retrying would not change it.
- Whatever fails becomes an ``EngineError``, so the chain falls back and the circuit breaker counts it.
  Nothing is cached unless it decoded as real audio.
"""

from __future__ import annotations

import hashlib
import threading
import wave

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from runtime.speech.audio import Pcm, decode_wav
from runtime.speech.engines.base import Engine, EngineError, Voice

APIS = ("openai", "coqui")


class _Retryable(Exception):
    """A failure worth another attempt (the upstream may be restarting or busy)."""


class ExternalEngine(Engine):
    name = "external"

    def __init__(self, url: str, api: str = "openai", voices: dict[str, str] | None = None, model: str = "tts-1",
                 timeout_s: float = 30.0, retries: int = 2, backoff_s: float = 0.2) -> None:
        if not url:
            raise EngineError("the external engine needs EXTERNAL_URL (e.g. http://tts-box:8880/v1)")
        if api not in APIS:
            raise EngineError(f"EXTERNAL_API must be one of {', '.join(APIS)}, got {api!r}")
        self.url = url.rstrip("/")
        self.api = api
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._voices = voices or {"default": "en-US"}
        # OpenAI-compatible servers take a speed; Coqui's server does not (the base class time-stretches)
        self.speed_range = (0.25, 4.0) if api == "openai" else (1.0, 1.0)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def voices(self) -> list[Voice]:
        return [Voice(self.name, name, language, f"{self.api} upstream at {self.url}")
                for name, language in self._voices.items()]

    def identity(self) -> str:
        # The upstream's model is not ours to hash: its address, API and model name stand for it.
        digest = hashlib.sha256(f"{self.api} {self.url} {self.model}".encode()).hexdigest()[:16]
        return f"external {self.api} {digest}"

    @property
    def loaded(self) -> bool:
        return self._client is not None

    def load(self) -> None:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=False)

    def _request(self, text: str, voice: str, speed: float) -> httpx.Response:
        if self.api == "openai":
            return self._client.post(f"{self.url}/audio/speech", json={
                "model": self.model, "input": text, "voice": voice, "response_format": "wav", "speed": speed})
        params = {"text": text} if voice == "default" else {"text": text, "speaker_id": voice}
        return self._client.get(f"{self.url}/api/tts", params=params)

    def _attempt(self, text: str, voice: str, speed: float) -> bytes:
        try:
            resp = self._request(text, voice, speed)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"no answer within {self.timeout_s:g}s") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 500:
            raise _Retryable(f"upstream answered {resp.status_code}: {resp.text[:200]!r}")
        if resp.status_code != 200:
            raise EngineError(f"external engine: upstream refused with {resp.status_code}: {resp.text[:200]!r}")
        return resp.content

    def _synthesize(self, text: str, voice: str, speed: float) -> Pcm:
        if voice not in self._voices:
            raise EngineError(f"the external engine has no voice {voice!r}")
        retrying = Retrying(stop=stop_after_attempt(self.retries + 1), reraise=True,
                            wait=wait_exponential(multiplier=self.backoff_s, max=5.0),
                            retry=retry_if_exception(lambda exc: isinstance(exc, _Retryable)))
        try:
            data = retrying(self._attempt, text, voice, speed)
        except _Retryable as exc:
            raise EngineError(f"external engine failed after {self.retries + 1} attempt(s): {exc}") from exc
        try:
            return decode_wav(data)
        except (ValueError, EOFError, wave.Error) as exc:
            raise EngineError(f"external engine: the answer is not mono 16-bit WAV audio ({exc}; "
                              f"{len(data)} bytes starting {data[:16]!r})") from exc
