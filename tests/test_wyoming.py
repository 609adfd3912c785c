"""The Wyoming server against the real ``wyoming`` client (what Home Assistant uses): describe, synthesize
(miss and hit), the streaming flow with chunks that split words, errors, unknown events, a client that
hangs up, several clients at once, and the address allowlist."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from tests.support import DecodedAudio, ServiceProcess, assert_speech

JOE = "piper:en_US-joe-medium"


@dataclass
class Answer:
    rate: int = 0
    chunks: list[bytes] = field(default_factory=list)
    first_chunk_s: float = 0.0

    @property
    def audio(self) -> DecodedAudio:
        return DecodedAudio(self.rate, 1, np.frombuffer(b"".join(self.chunks), dtype="<i2"))


async def read_answer(client: AsyncTcpClient, began: float) -> Answer | Error:
    """audio-start, audio-chunks, audio-stop → the audio; or an error event."""
    answer = Answer()
    while True:
        event = await asyncio.wait_for(client.read_event(), 60)
        assert event is not None, "the server closed the connection"
        if Error.is_type(event.type):
            return Error.from_event(event)
        if AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            assert (start.width, start.channels) == (2, 1)
            answer.rate = start.rate
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            assert chunk.rate == answer.rate and len(chunk.audio) <= 2048
            answer.first_chunk_s = answer.first_chunk_s or time.monotonic() - began
            answer.chunks.append(chunk.audio)
        elif AudioStop.is_type(event.type):
            return answer
        else:
            raise AssertionError(f"unexpected event {event.type}")


async def synthesize(port: int, text: str, voice: str | None = JOE, **kw) -> Answer | Error:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        began = time.monotonic()
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice, **kw)).event())
        return await read_answer(client, began)


def run(coroutine):
    return asyncio.run(coroutine)


def unique(text: str) -> str:
    return f"{text} Reference {uuid.uuid4().hex[:6]}."


def test_describe_lists_every_voice_readably(service):
    async def go():
        async with AsyncTcpClient("127.0.0.1", service.wyoming_port) as client:
            await client.write_event(Describe().event())
            return Info.from_event(await client.read_event())

    info = run(go())
    [program] = info.tts
    assert program.supports_synthesize_streaming and program.installed and program.version
    listed = httpx.get(service.url + "/api/voices").json()["voices"]
    assert sorted(v.name for v in program.voices) == sorted(v["id"] for v in listed)
    joe = next(v for v in program.voices if v.name == JOE)
    assert joe.description == "Joe (English, US) — Piper" and joe.languages == ["en-US"] and joe.installed
    assert joe.attribution.url == "https://github.com/rhasspy/piper"  # the engine's work, credited
    afrikaans = next(v for v in program.voices if v.name == "espeak:af")
    assert afrikaans.description == "Afrikaans — eSpeak NG" and afrikaans.attribution.name == "eSpeak NG"


def test_synthesize_streams_a_long_text_then_answers_it_from_the_cache(service):
    text = unique("The first sentence is here. A second one follows it. The third sentence ends the text.")
    miss = run(synthesize(service.wyoming_port, text))
    assert miss.rate == 22050
    assert_speech(miss.audio, text, sample_rate=22050)
    hit = run(synthesize(service.wyoming_port, text))
    assert hit.first_chunk_s < 0.5 and hit.first_chunk_s < miss.first_chunk_s
    assert abs(hit.audio.seconds - miss.audio.seconds) <= 0.02 * miss.audio.seconds


def test_a_voice_by_language_and_an_unknown_voice(service):
    german = run(synthesize(service.wyoming_port, unique("Guten Tag, wie geht es Ihnen?"), voice=None,
                            language="de"))
    assert isinstance(german, Answer) and german.audio.seconds > 0.5
    unknown = run(synthesize(service.wyoming_port, "Hello.", voice="nobody:here"))
    assert isinstance(unknown, Error) and unknown.code == "unknown_voice"
    nothing = run(synthesize(service.wyoming_port, "."))  # clients probe with such texts: a short silence
    assert isinstance(nothing, Answer) and 0 < nothing.audio.seconds < 0.5 and nothing.audio.rms == 0
    empty = run(synthesize(service.wyoming_port, "   "))
    assert isinstance(empty, Error) and empty.code == "empty_text"


def test_streaming_text_in_with_chunks_that_split_words(service):
    tag = uuid.uuid4().hex[:6]
    pieces = ["Hel", f"lo there, friend {tag}. How a", "re you to", "day? I am fi", "ne, thank you."]

    async def go():
        async with AsyncTcpClient("127.0.0.1", service.wyoming_port) as client:
            began = time.monotonic()
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=JOE)).event())
            for piece in pieces[:3]:
                await client.write_event(SynthesizeChunk(text=piece).event())
            # the first sentence is complete: its audio comes before the text has ended
            first = await asyncio.wait_for(read_answer(client, began), 20)
            for piece in pieces[3:]:
                await client.write_event(SynthesizeChunk(text=piece).event())
            await client.write_event(Synthesize(text="".join(pieces)).event())  # compatibility: ignored
            await client.write_event(SynthesizeStop().event())
            answers = [first]
            while True:
                event = await asyncio.wait_for(client.read_event(), 60)
                if SynthesizeStopped.is_type(event.type):
                    break
                assert AudioStart.is_type(event.type), event.type
                client_answer = await read_answer(_Replay(client, event), began)
                answers.append(client_answer)
            return answers

    answers = run(go())
    assert len(answers) == 3, [a.audio.seconds for a in answers]  # three sentences, each spoken once
    for answer, sentence in zip(answers, [f"Hello there, friend {tag}.", "How are you today?",
                                          "I am fine, thank you."], strict=True):
        assert_speech(answer.audio, sentence, sample_rate=22050)


class _Replay:
    """A client whose first read returns an event already read."""

    def __init__(self, client: AsyncTcpClient, event: Event) -> None:
        self.client, self.event = client, event

    async def read_event(self):
        event, self.event = self.event, None
        return event if event is not None else await self.client.read_event()


def test_unknown_events_are_ignored_and_the_connection_goes_on(service):
    async def go():
        async with AsyncTcpClient("127.0.0.1", service.wyoming_port) as client:
            await client.write_event(Event(type="something-from-2031", data={"x": 1}))
            await client.write_event(Describe().event())
            return await asyncio.wait_for(client.read_event(), 10)

    assert Info.is_type(run(go()).type)


def test_a_client_that_hangs_up_costs_only_its_own_stream_and_four_clients_at_once(service):
    text = unique("This long answer is abandoned. Its listener hangs up early. The synthesis still finishes.")

    async def hang_up():
        async with AsyncTcpClient("127.0.0.1", service.wyoming_port) as client:
            await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=JOE)).event())
            while not AudioChunk.is_type((await client.read_event()).type):
                pass  # hang up after the first chunk

    async def four():
        texts = [unique(f"Client number {n} asks for its own sentence. And a second one.") for n in range(4)]
        return await asyncio.gather(*(synthesize(service.wyoming_port, t) for t in texts)), texts

    run(hang_up())
    answers, texts = run(four())
    for answer, spoken in zip(answers, texts, strict=True):
        assert_speech(answer.audio, spoken, sample_rate=22050)
    deadline = time.monotonic() + 60
    while (again := run(synthesize(service.wyoming_port, text))).first_chunk_s > 0.5:
        assert time.monotonic() < deadline
    assert_speech(again.audio, text, sample_rate=22050)  # the abandoned job finished and is cached
    assert httpx.get(service.url + "/healthz").status_code == 200


@pytest.fixture(scope="module")
def narrowed(tmp_path_factory):
    proc = ServiceProcess(tmp_path_factory.mktemp("wy") / "data", env={"WYOMING_ALLOWED_CIDRS": "127.0.0.2/32"})
    try:
        yield proc.start().wait_ready(timeout=90, path="/healthz")
    finally:
        proc.stop()


def test_only_allowed_addresses_may_connect(narrowed):
    async def from_address(address: str):
        reader, writer = await asyncio.open_connection("127.0.0.1", narrowed.wyoming_port, local_addr=(address, 0))
        from wyoming.event import async_read_event, async_write_event

        await async_write_event(Describe().event(), writer)
        event = await asyncio.wait_for(async_read_event(reader), 10)
        writer.close()
        return event

    refused = run(from_address("127.0.0.1"))
    assert Error.is_type(refused.type) and Error.from_event(refused).code == "forbidden"
    assert Info.is_type(run(from_address("127.0.0.2")).type)
    assert "outside WYOMING_ALLOWED_CIDRS" in narrowed.log()


def test_a_long_streamed_text_is_spoken_whole_and_in_order(service):
    """Sentences of growing length in one chunk: each is answered once, in order (their audio grows too)."""
    tag = uuid.uuid4().hex[:6]
    words = "the quick brown fox jumps over a lazy dog near the quiet river bank at dawn"
    sentences = [f"List {tag} item {n}, " + " ".join(words.split()[:count]) + "." for n, count in
                 enumerate([2, 4, 6, 9, 12, 16], 1)]

    async def go():
        async with AsyncTcpClient("127.0.0.1", service.wyoming_port) as client:
            began = time.monotonic()
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=JOE)).event())
            await client.write_event(SynthesizeChunk(text=" ".join(sentences)).event())
            await client.write_event(SynthesizeStop().event())
            answers = []
            while True:
                event = await asyncio.wait_for(client.read_event(), 60)
                if SynthesizeStopped.is_type(event.type):
                    return answers
                answers.append(await read_answer(_Replay(client, event), began))

    answers = run(go())
    assert len(answers) == len(sentences) and all(isinstance(a, Answer) for a in answers), answers
    for answer, sentence in zip(answers, sentences, strict=True):
        assert_speech(answer.audio, sentence, sample_rate=22050)
    seconds = [a.audio.seconds for a in answers]
    assert seconds == sorted(seconds), seconds
    # synthesised one after the other (each with the cores to itself), not side by side
    with service.db() as db:
        jobs = db.execute("SELECT text, started_at, finished_at FROM jobs WHERE text LIKE ? ORDER BY started_at",
                          (f"List {tag} item %",)).fetchall()
    assert [job["text"] for job in jobs] == sentences
    for earlier, later in itertools.pairwise(jobs):
        assert later["started_at"] >= earlier["finished_at"], (earlier, later)


def test_streamed_chunks_are_reassembled_into_whole_words_and_sentences():
    from runtime.wyoming.server import take_sentences

    text, spoken = "", []
    for chunk in ["Hel", "lo there. How ", "are you to", "day? I am", " fine.", ""]:
        done, text = take_sentences(text + chunk, "en-US")
        spoken += done
    assert spoken == ["Hello there.", "How are you today?"] and text.strip() == "I am fine."
