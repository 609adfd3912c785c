"""Long text: split at sentence boundaries, synthesised chunk by chunk with progress, chunks cached and
reused, stitched without clicks."""

from __future__ import annotations

import numpy as np

from runtime.speech.audio import Pcm
from runtime.speech.chunks import split_text
from tests.support import assert_speech, decode_wav, poll_job


def test_split_respects_abbreviations_and_numbers():
    text = ("Dr. Smith paid $3.50 for 1,000.5 g of tea, i.e. a lot. He left at 5 p.m. on Jan. 3rd! "
            "Did he? Version 2.0 is out.")
    assert split_text(text) == ["Dr. Smith paid $3.50 for 1,000.5 g of tea, i.e. a lot.",
                                "He left at 5 p.m. on Jan. 3rd!", "Did he?", "Version 2.0 is out."]
    assert split_text("Herr Dr. Müller kam am 3. Mai. Er blieb z.B. lange.", "de-DE") == [
        "Herr Dr. Müller kam am 3. Mai.", "Er blieb z.B. lange."]


def test_overlong_sentences_are_cut_at_clauses_then_words():
    sentence = ", ".join(["a clause of several words"] * 40) + "."
    chunks = split_text(sentence, max_chars=120)
    assert all(len(c) <= 120 for c in chunks) and len(chunks) > 5
    assert " ".join(chunks).replace(" ", "") == sentence.replace(" ", "")
    words = " ".join(["word"] * 200)
    assert all(len(c) <= 50 for c in split_text(words, max_chars=50))


def test_fades_start_and_end_at_silence():
    loud = Pcm((np.ones(2205, dtype="<i2") * 20000).tobytes(), 22050).faded(0.005)
    samples = np.frombuffer(loud.samples, dtype="<i2")
    assert samples[0] == 0 and abs(int(samples[-1])) < 200 and samples[len(samples) // 2] == 20000


SENTENCES = [f"This is sentence number {n} of a long passage about the sea." for n in
             ("one", "two", "three", "four", "five", "six", "seven", "eight")]


def test_long_text_job_reports_progress_and_reuses_chunks(client):
    first_text = " ".join(SENTENCES[:6])
    job = client.post("/api/synthesize", json={"text": first_text, "format": "wav"}).json()
    assert job["progress"]["chunks_total"] == 6
    done = poll_job(client, job["status_url"])
    assert done["status"] == "succeeded", done
    assert done["progress"] == {"chunks_total": 6, "chunks_done": 6, "chunks_cached": 0}
    audio = decode_wav(client.get(done["audio_url"]).content)
    assert_speech(audio, first_text, sample_rate=22050)

    # A text sharing four sentences with the first: those come from the chunk cache.
    second_text = " ".join(SENTENCES[2:8])
    second = poll_job(client, client.post("/api/synthesize", json={"text": second_text}).json()["status_url"])
    assert second["status"] == "succeeded"
    assert second["progress"] == {"chunks_total": 6, "chunks_done": 6, "chunks_cached": 4}
    assert_speech(decode_wav(client.get(second["audio_url"]).content), second_text, sample_rate=22050)


def test_text_beyond_the_openai_limit_goes_to_jobs(client):
    text = " ".join(f"Paragraph {i} keeps the story going a little further." for i in range(90))
    assert len(text) > 4096
    too_long = client.post("/v1/audio/speech", json={"input": text})
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "text_too_long"
    job = client.post("/api/synthesize", json={"text": text, "voice": "espeak:en-us"}).json()
    assert job["progress"]["chunks_total"] == 90
    done = poll_job(client, job["status_url"], timeout=180)
    assert done["status"] == "succeeded" and done["progress"]["chunks_done"] == 90
    audio = decode_wav(client.get(done["audio_url"]).content)
    assert_speech(audio, text, sample_rate=22050)
