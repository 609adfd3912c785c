"""The engine adapter interface. Every engine (Piper, eSpeak NG, later Coqui and external HTTP) is one.

Two halves: metadata that is cheap to read in any process (``voices``, ``identity``) and the heavy
runtime loaded once per worker process (``load``, ``synthesize``).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.speech.audio import Pcm, time_stretch

CANARY_TEXT = "Ready."


class EngineError(RuntimeError):
    """An engine could not produce audio for this request (the next engine of the chain may)."""


@dataclass(frozen=True)
class Voice:
    engine: str
    name: str  # the engine's own name for it
    language: str  # BCP 47-ish, e.g. "en-US"
    description: str = ""

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"

    def as_json(self) -> dict:
        return {"id": self.id, "engine": self.engine, "name": self.name, "language": self.language,
                "description": self.description}


@dataclass(frozen=True)
class ProbeResult:
    engine: str
    ok: bool
    latency_s: float
    error: str = ""


class Pending:
    """A synthesis asked for: ``result()`` waits for its audio (raises EngineError), ``cancel()`` gives it up.
    In-process engines synthesise in the thread that asks for the result; engines with worker processes
    start at once and cancel by ending the process."""

    def __init__(self, run: Callable[[], Pcm], cancel: Callable[[], object] | None = None) -> None:
        self._run = run
        self._cancel = cancel

    def result(self) -> Pcm:
        return self._run()

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel()


class Engine(ABC):
    name: str = ""
    speed_range: tuple[float, float] = (0.25, 4.0)  # what the engine does natively; the rest is time-stretched
    deadline_s: float = 0.0  # longest one synthesis call may take (0: no deadline); ENGINE_DEADLINES

    @abstractmethod
    def voices(self) -> list[Voice]:
        """Voices this engine offers. Cheap: never loads a model."""

    def model_files(self) -> list[Path]:
        """The local files the engine's model is made of (checked against the model manifest)."""
        return []

    @abstractmethod
    def identity(self) -> str:
        """Stable id of the model and engine version (goes into cache keys). Cheap after the first call."""

    @abstractmethod
    def load(self) -> None:
        """Load the model into this process. Idempotent."""

    @property
    @abstractmethod
    def loaded(self) -> bool: ...

    @abstractmethod
    def _synthesize(self, text: str, voice: str, speed: float) -> Pcm: ...

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> Pcm:
        """Speak ``text`` with the engine's voice ``voice``; ``speed`` 1.0 is normal. Raises EngineError."""
        if not self.loaded:
            self.load()
        lo, hi = self.speed_range
        native = min(hi, max(lo, speed))
        try:
            pcm = self._call_with_deadline(text, voice, native) if self.deadline_s else self._synthesize(
                text, voice, native)
        except EngineError:
            raise
        except Exception as exc:  # an engine's own failure becomes a typed one the chain understands
            raise EngineError(f"{self.name} failed: {type(exc).__name__}: {exc}") from exc
        if not pcm.samples or pcm.peak() == 0:
            raise EngineError(f"{self.name} returned no audible audio")
        if native != speed:
            pcm = time_stretch(pcm, speed / native)
        return pcm

    def submit(self, text: str, voice: str, speed: float = 1.0, queue_behind: bool = False) -> Pending:
        """``synthesize`` asked for ahead of time: a job keeps its next sentence queued while it stores the
        last one, so an engine with worker processes never waits for the job's bookkeeping. ``queue_behind``:
        it may wait for the same job's synthesis in flight rather than run beside it."""
        return Pending(lambda: self.synthesize(text, voice, speed))

    def _call_with_deadline(self, text: str, voice: str, speed: float) -> Pcm:
        """``_synthesize`` in its own daemon thread, given up after ``deadline_s``: a hung engine call
        cannot be stopped from Python, but the job moves on to the next engine, and the circuit breaker
        stops sending work to an engine that keeps hanging."""
        outcome: list = []

        def run() -> None:
            try:
                outcome.append((True, self._synthesize(text, voice, speed)))
            except BaseException as exc:  # handed to the waiting thread
                outcome.append((False, exc))

        worker = threading.Thread(target=run, name=f"{self.name}-synthesis", daemon=True)
        worker.start()
        worker.join(self.deadline_s)
        if not outcome:
            raise EngineError(f"{self.name} took longer than its deadline of {self.deadline_s:g}s")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Release what ``load`` started (worker processes). The in-process engines have nothing to do."""
        return None

    def probe(self) -> ProbeResult:
        """Synthesise a short canary phrase with the first voice."""
        start = time.perf_counter()
        try:
            self.synthesize(CANARY_TEXT, self.voices()[0].name)
        except Exception as exc:
            return ProbeResult(self.name, False, time.perf_counter() - start, str(exc))
        return ProbeResult(self.name, True, time.perf_counter() - start)
