"""Engines for tests/test_isolation.py, built inside engine worker processes by name
(``"tests.isolation_engines:misbehaving_espeak"``): eSpeak NG that hangs or crashes in native code on cue."""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

from runtime.speech.engines.coqui import CoquiEngine
from runtime.speech.engines.espeak import EspeakEngine, _Library


class _Recording:
    """Logs every synthesis to ``record_dir/<pid>`` (monotonic time, start/end, text): which process
    spoke what, and when."""

    record_dir: Path

    def _record(self, line: str) -> None:
        with open(self.record_dir / str(os.getpid()), "a") as log:
            log.write(f"{time.monotonic():.6f} {line}\n")


class MisbehavingEspeak(_Recording, EspeakEngine):
    """Real eSpeak NG, except: a text "hang" blocks in C (libc ``sleep``) while holding eSpeak's
    library lock, as a hung libespeak-ng call would; "crash" aborts the process; "slow" sleeps in C for
    half a second first (without the lock). Every call is logged to ``record_dir/<pid>``."""

    def __init__(self, record_dir: str) -> None:
        super().__init__()
        self.record_dir = Path(record_dir)

    def _synthesize(self, text: str, voice: str, speed: float):
        self._record(f"start {text}")
        libc = ctypes.CDLL(None)
        if text.startswith("hang"):  # "hang" for an hour, "hang 3" for three seconds
            with _Library.lock:
                libc.sleep(int(text.split()[1]) if " " in text else 3600)
        if "crash" in text:
            os.abort()
        if "slow" in text:
            libc.usleep(500_000)
        pcm = super()._synthesize(text, voice, speed)
        self._record(f"end {text}")
        return pcm


def misbehaving_espeak(record_dir: str) -> MisbehavingEspeak:
    return MisbehavingEspeak(record_dir)


class RecordingCoqui(_Recording, CoquiEngine):
    def __init__(self, record_dir: str, model: str, config: str) -> None:
        super().__init__(model, config)
        self.record_dir = Path(record_dir)

    def _synthesize(self, text: str, voice: str, speed: float):
        self._record(f"start {text}")
        pcm = super()._synthesize(text, voice, speed)
        self._record(f"end {text}")
        return pcm


def recording_coqui(record_dir: str, model: str, config: str) -> RecordingCoqui:
    return RecordingCoqui(record_dir, model, config)


def spans(record_dir: Path, texts: list[str]) -> dict[str, tuple[int, float, float]]:
    """text -> (pid, start, end) from the records."""
    found: dict[str, tuple[int, float, float]] = {}
    for log in record_dir.iterdir():
        for line in log.read_text().splitlines():
            stamp, what, text = line.split(" ", 2)
            if text in texts:
                pid, start, end = found.get(text, (int(log.name), 0.0, 0.0))
                found[text] = (pid, float(stamp), end) if what == "start" else (pid, start, float(stamp))
    return found


def unloadable(message: str) -> EspeakEngine:
    raise RuntimeError(message)


def assert_spoken_in_parallel(engine, texts: list[str], voice: str, record_dir: Path, min_seconds: float = 1.0) -> None:
    """Two texts asked for at once are synthesised by two worker processes whose syntheses overlap."""
    import threading

    results: list[float] = []
    threads = [threading.Thread(target=lambda t=t: results.append(engine.synthesize(t, voice).seconds))
               for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 2 and min(results) > min_seconds, results
    found = spans(record_dir, texts)
    (pid_a, start_a, end_a), (pid_b, start_b, end_b) = found[texts[0]], found[texts[1]]
    assert pid_a != pid_b
    assert start_a < end_b and start_b < end_a, f"the two syntheses did not overlap: {found}"
