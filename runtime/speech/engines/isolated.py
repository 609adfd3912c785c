"""An engine whose syntheses run in a pool of worker processes (pebble), so a call given up at its deadline
is really ended: the process running it is killed and a fresh one takes its place, with its own copy of
the engine's native state (eSpeak NG's global lock, Piper's phonemiser, torch's thread pools).

A synthesis that hangs in native code cannot be stopped from a Python thread: an abandoned thread keeps
whatever lock it holds (eSpeak NG serialises its library) and keeps a core busy. In a worker process it
costs only that process. The same isolation keeps a crash in native code (a segfault) from taking the
service down: the pool reports the dead process as a failed synthesis, the fallback engine answers, and
a new process loads the model.

Each process holds one copy of the model and runs one synthesis at a time, so ``processes`` is the
engine's parallelism. An engine may also have an *idle lane*: one more process whose copy of the model uses
several cores (``PIPER_IDLE_THREADS``). A synthesis that starts while this worker process has no other
synthesis in flight runs there, so a lone request is answered as fast as the machine allows; under load
every synthesis runs on one core in the shared processes, which is what gives the most audio per second
(measured by ``bench.throughput`` and ``bench.wyoming``).

Metadata (voices, identity, model files) stays in the parent, read from a local, never-loaded instance of
the engine. Children are started with ``spawn``: the parent runs threads (web loop, Dramatiq workers), and
forking a threaded process is unsafe.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from loguru import logger

from runtime.speech.audio import Pcm
from runtime.speech.engines.base import Engine, EngineError, Pending, Voice

_POLL_S = 0.25  # the waiting thread wakes this often, so Dramatiq's time limit can interrupt it

# In the parent: syntheses submitted and not finished, over every isolated engine (they share the cores):
# on the shared processes, and on each engine's idle lane.
_lanes_lock = threading.Lock()
_in_flight = {"shared": 0, "idle": 0}
IDLE_LANE_DEPTH = 2  # one sentence running on the idle lane, and the same job's next one waiting

# In a worker process: the one engine this process exists to run, or why it could not be loaded.
_child: dict[str, object] = {}


def _resolve(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def _child_init(factory: str, args: tuple, log_level: str, log_json: bool) -> None:
    """Build and load the engine in a new worker process. Never raises: pebble would restart a process
    whose initializer fails, forever; the error is kept and every task reports it instead."""
    try:
        from runtime import logging as runtime_logging

        runtime_logging.setup(log_level, log_json)
        engine = _resolve(factory)(*args)
        engine.deadline_s = 0.0  # the parent enforces the deadline by ending this process
        engine.load()
        _child["engine"] = engine
    except BaseException as exc:
        _child["error"] = f"{type(exc).__name__}: {exc}"


def _child_synthesize(text: str, voice: str, speed: float) -> Pcm:
    engine = _child.get("engine")
    if engine is None:
        raise EngineError(f"the engine could not be loaded in its worker process: {_child.get('error')}")
    return engine.synthesize(text, voice, speed)


def _child_ready(hold_s: float) -> int:
    """This process's pid once its engine is loaded; held a moment, so that the other processes answer the
    other readiness tasks of the round."""
    if "engine" not in _child:
        raise EngineError(f"the engine could not be loaded in its worker process: {_child.get('error')}")
    time.sleep(hold_s)
    return os.getpid()


class ProcessIsolated(Engine):
    """``inner``'s voices and identity, with synthesis in ``processes`` worker processes, each built by
    ``factory`` (``"module:function"``, called with ``args``) and loaded once."""

    def __init__(self, inner: Engine, factory: str, args: tuple = (), processes: int = 1,
                 log_level: str = "INFO", log_json: bool = True, idle_args: tuple | None = None,
                 idle_threads: int = 0) -> None:
        self.inner = inner
        self.name = inner.name
        self.speed_range = inner.speed_range
        self.deadline_s = inner.deadline_s
        self.processes = max(1, processes)
        self._factory = factory
        self._args = args
        self._log = (log_level, log_json)
        self._idle_args = idle_args  # the idle lane's engine (None: no idle lane)
        self.idle_threads = idle_threads if idle_args is not None else 0  # (reported by /health/tts)
        self._pool = None
        self._idle_pool = None
        self._idle_in_flight = 0
        self._ready = False
        self._lock = threading.Lock()

    # --- metadata: the parent's own instance, never loaded -------------------------------------------

    def voices(self) -> list[Voice]:
        return self.inner.voices()

    def identity(self) -> str:
        return self.inner.identity()

    def model_files(self) -> list[Path]:
        return self.inner.model_files()

    # --- synthesis in the pool --------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._ready

    def load(self) -> None:
        """Start the worker processes and wait until each has loaded the model (in parallel). Raises
        EngineError when the model cannot be loaded."""
        with self._lock:
            if self._pool is None:
                from pebble import ProcessPool

                spawn = multiprocessing.get_context("spawn")
                self._pool = ProcessPool(max_workers=self.processes, initializer=_child_init,
                                         initargs=(self._factory, self._args, *self._log), context=spawn)
                if self._idle_args is not None:
                    self._idle_pool = ProcessPool(max_workers=1, initializer=_child_init,
                                                  initargs=(self._factory, self._idle_args, *self._log),
                                                  context=spawn)
                logger.info("engine {}: synthesis in {} worker process(es){}", self.name, self.processes,
                            " and an idle lane" if self._idle_pool is not None else "")
        if not self._ready:
            # Every process has loaded its copy when each has answered a readiness task (the first loads
            # are in parallel; until all are done the first requests would queue behind the slowest one).
            idle = self._idle_pool.schedule(_child_ready, args=(0,)) if self._idle_pool is not None else None
            seen: set[int] = set()
            while len(seen) < self.processes:
                futures = [self._pool.schedule(_child_ready, args=(0.05,)) for _ in range(self.processes)]
                seen.update(self._wait(future, None) for future in futures)
            if idle is not None:
                self._wait(idle, None)
            self._ready = True

    def _synthesize(self, text: str, voice: str, speed: float) -> Pcm:
        return self.synthesize(text, voice, speed)

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> Pcm:
        """One synthesis in a worker process, ended with the process after ``deadline_s`` (0: none)."""
        return self.submit(text, voice, speed).result()

    def submit(self, text: str, voice: str, speed: float = 1.0, queue_behind: bool = False) -> Pending:
        """Queue a synthesis for the next free worker process (the deadline counts from when it starts).

        The idle lane takes it when nothing else is being synthesised in this process. It also takes a job's
        second sentence (``queue_behind``) asked while the first, on the idle lane, is the only synthesis:
        it waits there rather than take cores from the sentence a listener is waiting for. Anything else
        goes to the shared processes, one core each: a long text's later sentences overlap there."""
        from runtime import metrics  # (the parent's: worker processes never import it)

        if self._pool is None:
            self.load()
        lane = self._claim(queue_behind)
        pool = self._idle_pool if lane == "idle" else self._pool
        try:
            future = pool.schedule(_child_synthesize, args=(text, voice, speed), timeout=self.deadline_s or None)
        except BaseException:
            self._release(lane)
            raise
        future.add_done_callback(lambda _future: self._release(lane))
        metrics.ENGINE_LANES.labels(self.name, lane).inc()
        return Pending(lambda: self._wait(future, self.deadline_s), cancel=future.cancel)  # (ends its process)

    def _claim(self, queue_behind: bool) -> str:
        """The lane for a new synthesis, counted in flight until ``_release``."""
        with _lanes_lock:
            others = _in_flight["shared"] + _in_flight["idle"] - self._idle_in_flight  # not on this idle lane
            if self._idle_pool is not None and others == 0 and (
                    self._idle_in_flight == 0 or (queue_behind and self._idle_in_flight < IDLE_LANE_DEPTH)):
                lane = "idle"
                self._idle_in_flight += 1
            else:
                lane = "shared"
            _in_flight[lane] += 1
            return lane

    def _release(self, lane: str) -> None:
        with _lanes_lock:
            _in_flight[lane] -= 1
            if lane == "idle":
                self._idle_in_flight -= 1

    def _wait(self, future, deadline_s: float | None):
        """The future's result, polling so that an asynchronous exception (Dramatiq's time limit) reaches
        this thread; the task is cancelled (its process ended) if this thread gives up waiting."""
        from pebble import ProcessExpired

        try:
            while True:
                try:
                    return future.result(timeout=_POLL_S)
                except FutureTimeout as exc:
                    if future.done() and isinstance(future.exception(), TimeoutError):
                        # pebble's own timeout: it has ended the process that ran the task
                        raise EngineError(f"{self.name} took longer than its deadline of {deadline_s:g}s; its "
                                          f"worker process was ended and a new one is starting") from exc
                    # still running (poll again), or finished just now (the next poll returns its result)
        except ProcessExpired as exc:
            raise EngineError(f"{self.name}'s worker process died (exit code {exc.exitcode}); a new one is "
                              f"starting") from exc
        except CancelledError as exc:
            raise EngineError(f"{self.name}'s synthesis was cancelled") from exc
        except (EngineError, OSError):
            raise
        except BaseException:
            future.cancel()  # the job gave up (time limit, shutdown): end the process running it
            raise

    def close(self) -> None:
        with self._lock:
            pools = (self._pool, self._idle_pool)
            self._pool, self._idle_pool, self._ready = None, None, False
        for pool in pools:
            if pool is not None:
                pool.stop()
                pool.join(timeout=10)


__all__ = ["ProcessIsolated"]
