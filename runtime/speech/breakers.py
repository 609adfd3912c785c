"""A circuit breaker per engine (pybreaker).

After ``ENGINE_FAIL_MAX`` consecutive failed syntheses (an error, empty audio, or the job time limit) the
engine's circuit opens: jobs skip it and go straight to the next engine of the chain, instead of paying
for a failure first. After ``ENGINE_COOLDOWN_S`` the circuit is half-open: the next job tries the engine
once, and its outcome closes or reopens the circuit.

In Redis mode the state lives in Redis, so every worker process shares it (one worker's failures spare
the others) and web processes can report it. Embedded mode keeps it in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

import pybreaker
from loguru import logger

T = TypeVar("T")
CircuitOpen = pybreaker.CircuitBreakerError


class _LogChanges(pybreaker.CircuitBreakerListener):
    def state_change(self, cb, old_state, new_state) -> None:
        old = old_state.name if old_state is not None else "-"
        logger.warning("engine {} circuit: {} -> {}", cb.name, old, new_state.name)


class EngineBreakers:
    def __init__(self, engines: list[str], fail_max: int, cooldown_s: float, redis_url: str = "",
                 scope: str = "") -> None:
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}
        client = None
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url)
        # one deployment (one database) shares its circuits; another deployment on the same Redis does not
        prefix = "ef-speech:breaker:" + hashlib.sha256(scope.encode()).hexdigest()[:8]
        for name in engines:
            storage = (pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace=f"{prefix}:{name}")
                       if client is not None else None)
            self._breakers[name] = pybreaker.CircuitBreaker(
                fail_max=fail_max, reset_timeout=cooldown_s, name=name, state_storage=storage,
                throw_new_error_on_trip=False, listeners=[_LogChanges()])

    def call(self, engine: str, fn: Callable[..., T], *args, **kwargs) -> T:
        """``fn(*args)`` guarded by ``engine``'s circuit. Raises ``CircuitOpen`` while it is open."""
        breaker = self._breakers.get(engine)
        if breaker is None:
            return fn(*args, **kwargs)
        return breaker.call(fn, *args, **kwargs)

    def status(self, engine: str) -> dict:
        breaker = self._breakers.get(engine)
        if breaker is None:
            return {"state": "closed", "consecutive_failures": 0}
        return {"state": breaker.current_state.replace("-", "_"), "consecutive_failures": breaker.fail_counter,
                "cooldown_s": breaker.reset_timeout}
