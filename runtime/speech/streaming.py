"""Audio that streams while it is synthesised.

The worker caches each chunk of a job (a sentence, or an SSML segment) as WAV and announces it on the job's
event channel. A streaming response follows the job's plan: it reads each chunk as it lands, adds the same
fades and pauses as the finished file, and feeds one long-lived ffmpeg encoder whose output goes to the
caller as it comes, as chunked audio bytes or as server-sent events (``speech.audio.delta`` with base64
audio, then ``speech.audio.done``). The web side needs only the job row and the shared cache directory,
so this works the same when synthesis runs in a separate worker process (Redis mode).

If the engine in use fails mid-job and the worker falls back to another, the stream goes on with the
fallback engine's chunks from where it was.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass

from loguru import logger
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from runtime.errors import ApiError, StreamAborted, SynthesisFailed, Timeout
from runtime.speech.audio import (
    CONTENT_TYPES,
    PCM_RATE,
    Pcm,
    PcmResampler,
    decode_wav,
    resample,
    stream_encoder_args,
    wav_stream_header,
)
from runtime.speech.engines import Voice
from runtime.speech.plan import Item, chunk_key, plan
from runtime.speech.request import SpeechRequest
from runtime.speech.responses import engine_headers
from runtime.speech.service import Rendered, SpeechService
from storage.models import FAILED, SUCCEEDED, JobState, job_state

SSE_FILE_PIECE = 32 * 1024  # bytes of a cached file per SSE delta


class _NoChunks(Exception):
    """The job finished without chunk files (its whole audio was already cached): serve the file."""


@dataclass(frozen=True)
class _Chunk:
    pause_before_s: float
    item: Item


@dataclass
class LiveStream:
    job_id: str
    first_pause_s: float
    first: Pcm
    engine: str
    fallback: bool
    follower: ChunkFollower


class ChunkFollower:
    """Reads a job's chunks in order as the worker caches them, following the voice the job is using."""

    def __init__(self, service: SpeechService, job_id: str, req: SpeechRequest, wait_s: float) -> None:
        self.service = service
        self.job_id = job_id
        self.req = req
        self.wait_s = wait_s
        self.chain: list[Voice] = service.catalog.chain(req.voice)
        self._plans: dict[str, tuple[list[_Chunk], float]] = {}
        self._voice: Voice | None = None  # the voice the job spoke with when last looked at

    def chunks(self, voice: Voice) -> tuple[list[_Chunk], float]:
        """The chunks this voice's synthesis caches, each with the pause before it, and the trailing pause."""
        if voice.id not in self._plans:
            chunks, pause = [], 0.0
            for item in plan(self.req.text, voice.language):
                if item.text:
                    chunks.append(_Chunk(pause, item))
                    pause = 0.0
                else:
                    pause += item.pause_s
            self._plans[voice.id] = (chunks, pause)
        return self._plans[voice.id]

    def _voice_for(self, job: JobState) -> Voice:
        """The voice the job speaks with now (the first of the chain until the worker starts)."""
        return next((v for v in self.chain if v.id == job.speaking_voice), self.chain[0])

    def _read(self, voice: Voice, chunk: _Chunk) -> Pcm | None:
        engine = self.service.engines.get(voice.engine)
        if engine is None:
            return None
        key = chunk_key(voice.engine, engine.identity(), voice.name, chunk.item, self.req.speed)
        try:
            return decode_wav(self.service.cache.path(key, "wav").read_bytes())
        except (FileNotFoundError, ValueError, EOFError, wave.Error):
            return None  # not there yet (files appear whole: written to a temp file, then renamed)

    def _poll(self, n: int) -> tuple[JobState, Voice, Pcm | None]:
        """The job as it is now, the voice it speaks with, and its chunk ``n`` if that is cached (one trip
        to a worker thread per look)."""
        job = job_state(self.job_id)
        if job is None:
            raise SynthesisFailed(f"job {self.job_id} no longer exists")
        voice = self._voice_for(job)
        chunks, _ = self.chunks(voice)
        return job, voice, self._read(voice, chunks[n]) if n < len(chunks) else None

    async def chunk(self, n: int) -> tuple[float, Pcm, Voice] | None:
        """Chunk ``n`` (pause before it, audio, voice that spoke), waiting for it; None after the last."""
        deadline = time.monotonic() + self.wait_s
        with self.service.events.subscribe(self.job_id) as woken:
            entered = True
            while True:
                if self._voice is not None:
                    got = self._from_disk(n)
                    if got is not None:  # the usual case after a wake-up: no query, no trip to a thread
                        return got
                    if entered:  # not there yet for the voice in use: wait for the worker's word first
                        entered = False
                        await self._wake(woken, deadline)
                        continue
                entered = False
                job, voice, pcm = await run_in_threadpool(self._poll, n)
                self._voice = voice
                chunks, _ = self.chunks(voice)
                if n >= len(chunks):
                    return None
                if pcm is not None:
                    return chunks[n].pause_before_s, pcm, voice
                if job.status == FAILED:
                    raise SynthesisFailed(f"synthesis failed: {job.error}")
                if job.status == SUCCEEDED:
                    raise _NoChunks()
                if time.monotonic() >= deadline:
                    raise Timeout(f"no audio for part {n + 1} of job {self.job_id} after {self.wait_s:.0f}s; the "
                                  f"job goes on: GET /api/jobs/{self.job_id}", code="synthesis_timeout")
                await self._wake(woken, deadline)

    def _from_disk(self, n: int) -> tuple[float, Pcm, Voice] | None:
        """Chunk ``n`` of the voice the job spoke with when last looked at, if it is on disk: read on the
        event loop (a sentence's file, just written, in the page cache). None when it is not there, or
        when only the job row can tell (the end of the plan)."""
        chunks, _ = self.chunks(self._voice)
        if n >= len(chunks):
            return None
        pcm = self._read(self._voice, chunks[n])
        return (chunks[n].pause_before_s, pcm, self._voice) if pcm is not None else None

    async def _wake(self, woken: asyncio.Event, deadline: float) -> None:
        """Until the worker announces a chunk (or the job's end), at most ``POLL_S`` (a lost announcement
        costs latency, never a hung stream)."""
        try:
            await asyncio.wait_for(woken.wait(), timeout=max(0.0, min(deadline - time.monotonic(),
                                                                      self.service.POLL_S)))
        except TimeoutError:
            pass
        woken.clear()

    async def pcm(self, stream: LiveStream, rate: int) -> AsyncIterator[bytes]:
        """s16le samples at ``rate``: the first chunk (already read), then the rest as they land."""
        tail = 0.0
        yield _silence(stream.first_pause_s, rate) + resample(stream.first, rate).faded().samples
        n = 1
        while True:
            try:
                got = await self.chunk(n)
            except _NoChunks:
                raise StreamAborted(f"job {self.job_id}: chunk {n + 1} is no longer cached") from None
            if got is None:
                break
            pause, pcm, voice = got
            tail = self.chunks(voice)[1]
            yield _silence(pause, rate) + resample(pcm, rate).faded().samples
            n += 1
        if tail:
            yield _silence(tail, rate)


def _silence(seconds: float, rate: int) -> bytes:
    return b"\x00\x00" * int(rate * seconds)


async def open_stream(service: SpeechService, req: SpeechRequest, timeout_s: float,
                      caller: str = "") -> Rendered | LiveStream:
    """A cache hit or a finished one-chunk job as ``Rendered``; otherwise a live stream whose first chunk
    is ready (so errors before any audio are still ordinary HTTP errors)."""
    key = service.cached(req)
    if key is not None:
        return Rendered(key, req.format, req.voice.engine, False, cache_hit=True)
    job, _ = await run_in_threadpool(service.submit, req, caller)
    follower = ChunkFollower(service, job.id, req, timeout_s)
    if job.status == SUCCEEDED or len(follower.chunks(req.voice)[0]) <= 1:
        return await service.outcome(job, timeout_s)  # nothing to stream ahead of the whole
    try:
        got = await follower.chunk(0)
    except _NoChunks:
        got = None
    if got is None:
        return await service.outcome(job, timeout_s)
    pause, first, voice = got
    return LiveStream(job.id, pause, first, voice.engine, voice.engine != req.voice.engine, follower)


async def encode_stream(pcm: AsyncIterator[bytes], fmt: str, rate: int) -> AsyncIterator[bytes]:
    """Encode s16le PCM into ``fmt`` as it comes: WAV and raw PCM in-process (a header, a resampler), the
    compressed formats with one ffmpeg process per stream."""
    if fmt == "wav":
        yield wav_stream_header(rate)
        async for samples in pcm:
            yield samples
        return
    if fmt == "pcm":
        resampler = PcmResampler(rate, PCM_RATE)
        async for samples in pcm:
            yield resampler(samples)
        return
    async for data in _ffmpeg_stream(pcm, fmt, rate):
        yield data


async def _ffmpeg_stream(pcm: AsyncIterator[bytes], fmt: str, rate: int) -> AsyncIterator[bytes]:
    """Encode s16le PCM into ``fmt`` with one ffmpeg process, yielding its output as it comes."""
    proc = await asyncio.create_subprocess_exec(*stream_encoder_args(fmt, rate), stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    failure: BaseException | None = None

    async def feed() -> None:
        nonlocal failure
        try:
            async for samples in pcm:
                proc.stdin.write(samples)
                await proc.stdin.drain()
        except (ApiError, StreamAborted) as exc:
            failure = exc
        except (BrokenPipeError, ConnectionResetError):
            failure = StreamAborted("the encoder stopped early")
        finally:
            proc.stdin.close()

    feeder = asyncio.create_task(feed())
    try:
        while data := await proc.stdout.read(64 * 1024):
            yield data
        await feeder
        if failure is not None:
            raise failure
        if await proc.wait() != 0:
            raise StreamAborted(f"the {fmt} encoder exited with status {proc.returncode}")
    finally:
        feeder.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def sse_events(audio: AsyncIterator[bytes], characters: int) -> AsyncIterator[bytes]:
    """OpenAI's speech SSE shape: ``speech.audio.delta`` events with base64 audio, then ``speech.audio.done``
    (usage counts input characters as tokens; there is no tokenizer here). A failure after the first
    event ends the stream with an ``error`` event instead of ``done``."""
    try:
        async for data in audio:
            yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
    except ApiError as exc:
        yield _event({"type": "error", "error": exc.body()["error"]})
        return
    except StreamAborted as exc:
        yield _event({"type": "error", "error": {"code": "stream_aborted", "message": str(exc)}})
        return
    yield _event({"type": "speech.audio.done",
                  "usage": {"input_tokens": characters, "output_tokens": 0, "total_tokens": characters}})


async def _file_pieces(path, size: int = SSE_FILE_PIECE) -> AsyncIterator[bytes]:
    data = await run_in_threadpool(path.read_bytes)
    for start in range(0, len(data), size):
        yield data[start:start + size]


def stream_headers(engine: str, fallback: bool, cache_hit: bool, job_id: str | None) -> dict[str, str]:
    return {**engine_headers(engine, fallback, cache_hit, job_id), "cache-control": "no-store"}


def live_response(stream: LiveStream, req: SpeechRequest, sse: bool) -> Response:
    rate = stream.first.sample_rate
    audio = encode_stream(stream.follower.pcm(stream, rate), req.format, rate)
    headers = stream_headers(stream.engine, stream.fallback, False, stream.job_id)
    logger.debug("streaming job {} as {}{}", stream.job_id, req.format, " over SSE" if sse else "")
    if sse:
        return StreamingResponse(sse_events(audio, len(req.text)), media_type="text/event-stream", headers=headers)
    return StreamingResponse(audio, media_type=CONTENT_TYPES[req.format], headers=headers)


def sse_file_response(service: SpeechService, audio: Rendered, characters: int) -> Response:
    """A finished file as SSE deltas (the same event shape as a live stream)."""
    path = service.cache.path(audio.key, audio.format)
    headers = stream_headers(audio.engine, audio.fallback, audio.cache_hit, audio.job_id)
    return StreamingResponse(sse_events(_file_pieces(path), characters), media_type="text/event-stream",
                             headers=headers)
