"""A circuit breaker per engine that never serialises the calls it guards.

After ``ENGINE_FAIL_MAX`` consecutive failed syntheses (an error, empty audio, a deadline, or the job time
limit) the engine's circuit opens: jobs skip it and go straight to the next engine of the chain, instead of
paying for a failure first. After ``ENGINE_COOLDOWN_S`` the circuit is half-open: one job tries the engine
(one trial at a time per process; the others skip it meanwhile), and its outcome closes or reopens the
circuit.

The state (closed / open / half-open, the failure counter, when it opened) lives in pybreaker's storage
classes: in memory in embedded mode, in Redis when scaled out (``CircuitRedisStorage``), so every worker
process shares it and web processes can report it. The decisions are made here rather than by
``pybreaker.CircuitBreaker.call``, because that holds one lock for the whole wrapped call: every synthesis
through an engine's breaker ran one at a time per process, which halved throughput on two cores. Here a
short lock covers only the bookkeeping before and after a call.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pybreaker
from loguru import logger

T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN


class CircuitOpen(Exception):
    """The engine's circuit is open (or its half-open trial is in flight): skip it."""


class Breaker:
    """One engine's circuit. ``call`` runs concurrently; only the state changes take a (short) lock."""

    def __init__(self, name: str, fail_max: int, cooldown_s: float,
                 storage: pybreaker.CircuitBreakerStorage | None = None) -> None:
        self.name = name
        self.fail_max = fail_max
        self.cooldown_s = cooldown_s
        self._storage = storage or pybreaker.CircuitMemoryStorage(CLOSED)
        self._lock = threading.Lock()
        self._trial = False  # this process runs the half-open trial now

    @property
    def state(self) -> str:
        return self._storage.state

    @property
    def failures(self) -> int:
        return self._storage.counter

    def _set(self, old: str, new: str) -> None:
        self._storage.state = new
        if new == OPEN:
            self._storage.opened_at = datetime.now(UTC)
        logger.warning("engine {} circuit: {} -> {}", self.name, old, new)

    def _admit(self) -> bool:
        """Let a call through, or raise CircuitOpen. Returns True when the call is the half-open trial."""
        with self._lock:
            state = self._storage.state
            if state == CLOSED:
                return False
            if state == OPEN:
                opened = self._storage.opened_at
                if opened is not None and datetime.now(UTC) < opened + timedelta(seconds=self.cooldown_s):
                    raise CircuitOpen(f"engine {self.name}: circuit open")
                self._set(OPEN, HALF_OPEN)
            if self._trial:
                raise CircuitOpen(f"engine {self.name}: circuit half-open, its trial is running")
            self._trial = True
            return True

    def _failed(self, trial: bool) -> None:
        with self._lock:
            self._storage.increment_counter()
            state = self._storage.state
            if trial:
                self._trial = False
                if state != OPEN:
                    self._set(state, OPEN)
            elif state == CLOSED and self._storage.counter >= self.fail_max:
                self._set(CLOSED, OPEN)

    def _succeeded(self, trial: bool) -> None:
        with self._lock:
            if self._storage.counter:
                self._storage.reset_counter()
            if trial:
                self._trial = False
                state = self._storage.state
                if state != CLOSED:
                    self._set(state, CLOSED)

    def call(self, fn: Callable[..., T], *args, not_engine: tuple[type[BaseException], ...] = (), **kwargs) -> T:
        """``fn(*args)``; a failure counts against the engine unless it is one of ``not_engine`` (the
        database or the disk failing is not the engine's fault: it neither opens nor closes the circuit)."""
        trial = self._admit()
        try:
            result = fn(*args, **kwargs)
        except not_engine:
            if trial:
                with self._lock:
                    self._trial = False
            raise
        except BaseException:  # Dramatiq's time limit (Interrupt) counts too
            self._failed(trial)
            raise
        self._succeeded(trial)
        return result


class EngineBreakers:
    def __init__(self, engines: list[str], fail_max: int, cooldown_s: float, redis_url: str = "",
                 scope: str = "") -> None:
        self._breakers: dict[str, Breaker] = {}
        client = None
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url)
        # one deployment (one database) shares its circuits; another deployment on the same Redis does not
        prefix = "ef-speech:breaker:" + hashlib.sha256(scope.encode()).hexdigest()[:8]
        for name in engines:
            storage = (pybreaker.CircuitRedisStorage(CLOSED, client, namespace=f"{prefix}:{name}")
                       if client is not None else None)
            self._breakers[name] = Breaker(name, fail_max, cooldown_s, storage)

    def call(self, engine: str, fn: Callable[..., T], *args, not_engine: tuple[type[BaseException], ...] = (),
             **kwargs) -> T:
        """``fn(*args)`` guarded by ``engine``'s circuit. Raises ``CircuitOpen`` while it is open."""
        breaker = self._breakers.get(engine)
        if breaker is None:
            return fn(*args, **kwargs)
        return breaker.call(fn, *args, not_engine=not_engine, **kwargs)

    def status(self, engine: str) -> dict:
        breaker = self._breakers.get(engine)
        if breaker is None:
            return {"state": "closed", "consecutive_failures": 0}
        return {"state": breaker.state.replace("-", "_"), "consecutive_failures": breaker.failures,
                "cooldown_s": breaker.cooldown_s}
