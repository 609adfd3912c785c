"""``python -m runtime say`` and ``python -m runtime batch`` as an operator runs them: real engines, real
processes, the audio decoded; the cache they fill is the one the service answers from; a batch interrupted
with Ctrl-C resumes from the cache; failures are reported and make the exit code non-zero."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from tests.support import ROOT, ServiceProcess, assert_speech, decode_wav, decode_with_ffmpeg, running_service


def cli(data_dir, *args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    proc = ServiceProcess(data_dir, env=env)  # its environment: the data directory, nothing inherited
    return subprocess.run([sys.executable, "-m", "runtime", *args], cwd=ROOT, env=proc.env, capture_output=True,
                          timeout=180, **kwargs)


def test_say_speaks_into_a_file_through_the_cache_the_service_uses(tmp_path):
    data, out = tmp_path / "data", tmp_path / "hello.mp3"
    text = "Good evening, the front door is locked."
    first = cli(data, "say", text, "-o", str(out))
    assert first.returncode == 0, first.stderr
    assert b"piper, synthesised" in first.stderr
    assert_speech(decode_with_ffmpeg(out.read_bytes()), text, sample_rate=22050)
    spoken = out.read_bytes()
    again = cli(data, "say", text, "-o", str(out))
    assert again.returncode == 0 and b"from the cache" in again.stderr, again.stderr
    assert out.read_bytes() == spoken
    # the format from --format, written to standard output
    wav = cli(data, "say", text, "-o", "-", "--format", "wav", "--voice", "espeak:en-us", "--speed", "1.5")
    assert wav.returncode == 0, wav.stderr
    assert b"espeak, synthesised" in wav.stderr
    assert_speech(decode_wav(wav.stdout), text)
    # the service finds what the command rendered
    with running_service(data) as service, httpx.Client(base_url=service.url, timeout=60) as c:
        hit = c.post("/v1/audio/speech", json={"input": text, "response_format": "mp3"})
        assert hit.headers["x-cache"] == "hit" and hit.content == spoken


def test_say_refuses_bad_input_with_the_apis_codes_and_writes_nothing(tmp_path):
    out = tmp_path / "nothing.mp3"
    for args, code in ((["Hello.", "--format", "xyz"], b"unknown_format"), (["   "], b"empty_text"),
                       (["Hello.", "--voice", "nobody:here"], b"unknown_voice"),
                       (["Hello.", "--speed", "9"], b"invalid_speed")):
        refused = cli(tmp_path / "data", "say", *args, "-o", str(out))
        assert refused.returncode == 2 and refused.stderr.startswith(code), refused.stderr
    assert list(tmp_path.glob("*.mp3")) == [] and list(tmp_path.glob(".nothing*")) == []


def test_a_batch_renders_resumes_after_ctrl_c_and_reports_failures(tmp_path):
    data, out = tmp_path / "data", tmp_path / "cards"
    words = ["apple", "bridge", "candle", "desert", "engine", "forest", "garden", "harbour", "island", "jacket",
             "kettle", "ladder", "meadow", "needle"]
    phrases = [f"Flashcard {n}: the word {word} means what it says." for n, word in enumerate(words, 1)]
    listing = tmp_path / "phrases.txt"
    too_long = "This phrase is far too long for the limit this test sets, so it fails. " * 3
    listing.write_text("# flashcards\n" + "\n".join(phrases[:7]) + f"\n\n{too_long}\n" + "\n".join(phrases[7:]) + "\n")
    # Piper, one phrase at a time: slow enough (a few tenths of a second a phrase) that Ctrl-C lands mid-batch
    env = {"MAX_JOB_TEXT_CHARS": "120", "PIPER_IDLE_THREADS": "0"}
    command = [sys.executable, "-m", "runtime", "batch", str(listing), "--out", str(out), "--parallel", "1"]
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731  as for a background job
    first = subprocess.Popen(command, cwd=ROOT, env=ServiceProcess(data, env=env).env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=ignore_sigint)
    deadline = time.monotonic() + 60
    while len(list(out.glob("*.mp3"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert b"interrupted:" in err and b"run it again to resume" in err, err
    done_before = len(list(out.glob("*.mp3")))
    assert 3 <= done_before < len(phrases)

    again = cli(data, "batch", str(listing), "--out", str(out), env=env)
    assert again.returncode == 1, again.stderr  # one phrase failed
    summary = again.stderr.decode().strip().splitlines()[-1]
    rendered, cached = int(summary.split(" rendered")[0]), int(summary.split(", ")[1].split(" from cache")[0])
    assert cached >= done_before and rendered + cached == len(phrases) and "1 failed" in summary, summary
    assert "line 10 failed: text_too_long" in again.stderr.decode()  # its line in the file
    files = sorted(out.glob("*.mp3"))
    assert [f.name for f in files][:2] == ["0001-flashcard-1-the-word-apple-means-what-it-says.mp3",
                                           "0002-flashcard-2-the-word-bridge-means-what-it-says.mp3"]
    assert len(files) == len(phrases) and not list(out.glob(".*partial*"))
    for file, phrase in zip(files[:3] + files[-2:], phrases[:3] + phrases[-2:], strict=True):
        assert_speech(decode_with_ffmpeg(file.read_bytes()), phrase, sample_rate=22050)
