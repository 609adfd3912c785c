"""Engines for tests/test_isolation.py, built inside engine worker processes by name
(``"tests.isolation_engines:misbehaving_espeak"``): eSpeak NG that hangs or crashes in native code on cue."""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

from runtime.speech.engines.espeak import EspeakEngine, _Library


class MisbehavingEspeak(EspeakEngine):
    """Real eSpeak NG, except: a text "hang" blocks in C (libc ``sleep``) while holding eSpeak's
    library lock, as a hung libespeak-ng call would; "crash" aborts the process; "slow" sleeps in C for
    half a second first (without the lock). Every call is logged to ``record_dir/<pid>``."""

    def __init__(self, record_dir: str) -> None:
        super().__init__()
        self.record_dir = Path(record_dir)

    def _record(self, line: str) -> None:
        with open(self.record_dir / str(os.getpid()), "a") as log:
            log.write(f"{time.monotonic():.6f} {line}\n")

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


def unloadable(message: str) -> EspeakEngine:
    raise RuntimeError(message)
