"""A Wyoming server (Home Assistant's local voice protocol) in the service process: a thin adapter from
Wyoming events to the same speech service the HTTP functions use (cache, single-flight, queue and
back-pressure, fallback chain, circuit breakers, metrics). Scaled out, it runs in the web process and the
synthesis stays on the workers.

Events (the ``wyoming`` package's types):
- ``describe`` → ``info``: one TTS program listing every voice, ``supports_synthesize_streaming``.
- ``synthesize`` → ``audio-start``, ``audio-chunk``s (16-bit mono PCM at the voice's rate, 1,024 samples
  each), ``audio-stop``. A text of several sentences streams as each sentence is synthesised; a cache hit
  answers at once.
- ``synthesize-start``, ``synthesize-chunk``s (chunks may split words: the text is reassembled and each
  sentence spoken once it is complete; the next sentence's synthesis starts while one is being sent),
  ``synthesize`` (ignored while streaming: clients send it for compatibility), ``synthesize-stop`` → audio
  per sentence, then ``synthesize-stopped``. The flow Home Assistant uses since 2025.7.
- Failures are ``error`` events with a stable code (the HTTP API's codes); unknown event types are ignored
  (answering them with an error broke servers on Home Assistant 2025.8). A client that hangs up costs only
  its own stream: the jobs it started finish and are cached.

The protocol has no authentication, so only ``WYOMING_ALLOWED_CIDRS`` may connect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from loguru import logger
from starlette.concurrency import run_in_threadpool
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler, AsyncTcpServer
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from runtime import metrics
from runtime.errors import ApiError, InvalidInput
from runtime.security.addresses import inside, parse_address, parse_networks
from runtime.speech.audio import decode_wav
from runtime.speech.chunks import split_text
from runtime.speech.request import SpeechRequest
from runtime.speech.service import Rendered
from runtime.speech.streaming import open_stream
from runtime.speech.text import normalise
from runtime.speech.voices import labelled

SAMPLES_PER_CHUNK = 1024
LOOK_AHEAD = 3  # streamed sentences prepared (jobs queued) ahead of the one being sent
WIDTH, CHANNELS = 2, 1
ATTRIBUTION = Attribution(name="ef speech functions", url="https://github.com/ef-speech/ef-speech-functions")
# whose work a voice is: its engine's (Home Assistant shows it beside the voice)
ENGINE_ATTRIBUTIONS = {
    "piper": Attribution(name="rhasspy (Piper)", url="https://github.com/rhasspy/piper"),
    "espeak": Attribution(name="eSpeak NG", url="https://github.com/espeak-ng/espeak-ng"),
    "coqui": Attribution(name="Coqui TTS", url="https://github.com/idiap/coqui-ai-TTS"),
}


def _version() -> str:
    from runtime.metrics import _version as version

    return version()


def describe_voices(services) -> Info:
    """One TTS program with every voice: its id as the name, its language, a readable description."""
    voices = []
    for voice in services.catalog.all():
        voices.append(TtsVoice(
            name=voice.id, attribution=ENGINE_ATTRIBUTIONS.get(voice.engine, ATTRIBUTION), installed=True,
            version=None,
            description=labelled(voice),
            languages=[voice.language]))
    program = TtsProgram(name="ef-speech", attribution=ATTRIBUTION, installed=True, version=_version(),
                         description="ef speech functions: cached, queued speech from several engines",
                         voices=voices, supports_synthesize_streaming=True)
    return Info(tts=[program])


def take_sentences(text: str, language: str) -> tuple[list[str], str]:
    """Streamed text so far → (the sentences that are complete, the rest). A sentence is complete once more
    text follows it; the rest keeps a trailing space, so the next chunk's first word stays a word of its own."""
    if not text.strip():
        return [], text
    parts = split_text(normalise(text), language)
    if len(parts) < 2:
        return [], text
    return parts[:-1], parts[-1] + (" " if text[-1].isspace() else "")


class Session(AsyncEventHandler):
    """One client connection."""

    def __init__(self, server: WyomingServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.server = server
        peer = writer.get_extra_info("peername") or ("", 0)
        self.client = str(peer[0])
        self.streaming = False
        self.voice: SynthesizeVoice | None = None
        self.text = ""  # streamed text not yet spoken (an incomplete sentence)
        self.sentences: asyncio.Queue[str | None] | None = None
        self.sender: asyncio.Task | None = None

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.server.info().event())
        elif Synthesize.is_type(event.type):
            if not self.streaming:  # while streaming it only repeats the text, for older servers
                synthesize = Synthesize.from_event(event)
                await self._answer(self._prepare(synthesize.text, synthesize.voice, required=True))
        elif SynthesizeStart.is_type(event.type):
            start = SynthesizeStart.from_event(event)
            await self._finish_stream()
            self.streaming, self.voice, self.text = True, start.voice, ""
            self.sentences = asyncio.Queue()
            self.sender = asyncio.create_task(self._send_sentences(self.sentences, start.voice))
        elif SynthesizeChunk.is_type(event.type):
            if self.streaming:
                complete, self.text = take_sentences(self.text + SynthesizeChunk.from_event(event).text,
                                                     self._language())
                for sentence in complete:
                    self._queue(sentence)
        elif SynthesizeStop.is_type(event.type) and self.streaming:
            if self.text.strip():
                self._queue(self.text)
            self.text = ""
            await self._finish_stream()
            await self.write_event(SynthesizeStopped().event())
        return True  # anything else is ignored: clients send events a TTS server need not know

    async def disconnect(self) -> None:
        if self.sender is not None:
            self.sender.cancel()

    # -- streaming text in ---------------------------------------------------------------------------------

    def _language(self) -> str:
        voice = self.voice
        if voice is not None and voice.language:
            return voice.language
        try:
            return self.server.resolve(voice).language
        except ApiError:
            return "en"

    def _queue(self, sentence: str) -> None:
        self.sentences.put_nowait(sentence)

    async def _send_sentences(self, queue: asyncio.Queue, voice: SynthesizeVoice | None) -> None:
        """Speak the streamed sentences in order. The next ``LOOK_AHEAD`` sentences' audio is prepared, one
        after the other, while one is sent; no more, so a client streaming a book does not flood the queue."""
        pending: deque[asyncio.Task] = deque()
        closed = False
        try:
            while True:
                while not closed and len(pending) < LOOK_AHEAD and (not pending or not queue.empty()):
                    sentence = await queue.get()
                    if sentence is None:
                        closed = True
                    else:
                        before = pending[-1] if pending else None
                        pending.append(asyncio.create_task(self._prepare_after(before, sentence, voice)))
                if not pending:
                    return
                await self._answer(pending.popleft())
        finally:
            for task in pending:
                task.cancel()

    async def _prepare_after(self, before: asyncio.Task | None, text: str, voice: SynthesizeVoice | None):
        """``_prepare`` once the sentence before is ready: one sentence synthesised at a time, each with the
        cores to itself (a lone synthesis takes the engine's idle lane), so the first, which the listener
        is waiting for, is not slowed by the ones after it; each is still ready long before its turn."""
        if before is not None:
            await asyncio.wait([before])
        return await self._prepare(text, voice)

    async def _finish_stream(self) -> None:
        if self.sender is None:
            return
        self.sentences.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self.sender
        self.sender, self.sentences, self.streaming = None, None, False

    # -- answering -----------------------------------------------------------------------------------------

    async def _prepare(self, text: str, voice: SynthesizeVoice | None, required: bool = False):
        """The audio for ``text`` as (rate, async iterator of PCM bytes), or an ``ApiError``. Runs as soon as
        a sentence is complete, so its job is queued while earlier sentences are still being sent."""
        try:
            return await self.server.audio(text, voice, self.client, required)
        except ApiError as exc:
            return exc
        except Exception:  # never a dead connection for one sentence: an error event, and the next goes on
            logger.exception("wyoming {}: could not prepare audio", self.client)
            return ApiError("internal error; the service log has details", code="internal_error", status=500)

    async def _answer(self, prepared) -> None:
        got = await prepared
        if isinstance(got, ApiError):
            metrics.WYOMING_REQUESTS.labels("error").inc()
            logger.info("wyoming {}: {} ({})", self.client, got.code, got.message)
            await self.write_event(Error(text=got.message, code=got.code).event())
            return
        rate, pcm = got
        await self.write_event(AudioStart(rate=rate, width=WIDTH, channels=CHANNELS).event())
        step = SAMPLES_PER_CHUNK * WIDTH * CHANNELS
        pending = b""
        try:
            async for samples in pcm:
                pending += samples
                while len(pending) >= step:
                    await self.write_event(AudioChunk(rate=rate, width=WIDTH, channels=CHANNELS,
                                                      audio=pending[:step]).event())
                    pending = pending[step:]
        except ApiError as exc:  # the engine failed mid-text: end this answer, say why
            await self.write_event(Error(text=exc.message, code=exc.code).event())
        if pending:
            await self.write_event(AudioChunk(rate=rate, width=WIDTH, channels=CHANNELS, audio=pending).event())
        await self.write_event(AudioStop().event())
        metrics.WYOMING_REQUESTS.labels("ok").inc()


class WyomingServer:
    """The listener: built in the web process's lifespan, over the process's speech services."""

    def __init__(self, settings, services) -> None:
        self.settings = settings
        self.services = services
        self.networks = parse_networks(settings.wyoming_allowed_cidrs, "WYOMING_ALLOWED_CIDRS")
        self.host, self.port = settings.wyoming_listen
        self._server: AsyncTcpServer | None = None
        self._info: Info | None = None

    def info(self) -> Info:
        if self._info is None:
            self._info = describe_voices(self.services)
        return self._info

    def resolve(self, voice: SynthesizeVoice | None):
        catalog = self.services.catalog
        if voice is not None and voice.name:
            return catalog.resolve(voice.name)
        if voice is not None and voice.language:
            found = catalog.for_language(voice.language)
            if found is None:
                raise InvalidInput(f"no voice speaks {voice.language!r}; describe lists the voices",
                                   code="unknown_voice")
            return found
        return catalog.default

    async def audio(self, text: str, voice: SynthesizeVoice | None, client: str,
                    required: bool) -> tuple[int, AsyncIterator[bytes]]:
        text = normalise(text or "")
        if not text:
            if required:
                raise InvalidInput("the text is empty; give some text to speak", code="empty_text")
            return 22050, _silence(0)
        if len(text) > self.settings.max_text_chars:
            raise InvalidInput(f"the text has {len(text)} characters; the limit is {self.settings.max_text_chars}",
                               code="text_too_long")
        chosen = self.resolve(voice)
        req = SpeechRequest(text=text, voice=chosen, format="wav", speed=1.0)
        service = self.services.speech
        got = await open_stream(service, req, self.settings.request_timeout_s, f"ip:{client}")
        if isinstance(got, Rendered):
            data = await run_in_threadpool(self.services.cache.path(got.key, got.format).read_bytes)
            pcm = decode_wav(data)
            return pcm.sample_rate, _once(pcm.samples)
        rate = got.first.sample_rate
        return rate, got.follower.pcm(got, rate)

    def allowed(self, writer: asyncio.StreamWriter) -> bool:
        peer = writer.get_extra_info("peername") or ("", 0)
        return inside(parse_address(str(peer[0])), self.networks)

    def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> AsyncEventHandler:
        if not self.allowed(writer):
            return _Refused(reader, writer)
        return Session(self, reader, writer)

    async def start(self) -> WyomingServer:
        self._server = AsyncTcpServer(self.host, self.port)
        try:
            await self._server.start(self._session)
        except OSError as exc:
            raise RuntimeError(f"the Wyoming server cannot listen on tcp://{self.host}:{self.port}: {exc}; set "
                               f"WYOMING_URI to another port, or WYOMING_URI=off") from None
        sockets = self._server._server.sockets if self._server._server else []
        if sockets:
            self.port = sockets[0].getsockname()[1]  # port 0: the one the system chose
        logger.info("wyoming listening on tcp://{}:{} ({} voices)", self.host, self.port,
                    len(self.services.catalog.all()))
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()


class _Refused(AsyncEventHandler):
    """A client outside ``WYOMING_ALLOWED_CIDRS``: one error event, then the connection closes."""

    async def run(self) -> None:
        peer = self.writer.get_extra_info("peername") or ("?",)
        logger.warning("wyoming: refused a client at {} (outside WYOMING_ALLOWED_CIDRS)", peer[0])
        with contextlib.suppress(OSError):
            await self.write_event(Error(text="this address may not use the Wyoming server",
                                         code="forbidden").event())
        self.writer.close()

    async def handle_event(self, event: Event) -> bool:
        return False


async def _once(samples: bytes) -> AsyncIterator[bytes]:
    yield samples


async def _silence(samples: float) -> AsyncIterator[bytes]:
    yield b"\x00\x00" * int(samples)
