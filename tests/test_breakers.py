"""The engine circuit breaker: it decides open / closed / half-open like pybreaker, but never serialises the
calls it guards (pybreaker's ``call`` held one lock for the whole synthesis, so one engine ran one synthesis
at a time per process)."""

from __future__ import annotations

import threading
import time

import pytest

from runtime.speech.breakers import CircuitOpen, EngineBreakers


class Boom(RuntimeError):
    pass


def fail() -> None:
    raise Boom("engine failed")


def test_calls_of_one_engine_run_at_the_same_time():
    breakers = EngineBreakers(["piper"], fail_max=3, cooldown_s=30)
    inside = threading.Barrier(3, timeout=5)  # three calls must be inside the breaker together to pass
    results: list[str] = []

    def synthesis(n: int) -> str:
        inside.wait()
        return f"call {n}"

    def call(n: int) -> None:
        results.append(breakers.call("piper", synthesis, n))

    threads = [threading.Thread(target=call, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["call 0", "call 1", "call 2"]  # a serialising breaker breaks the barrier


def test_opens_after_consecutive_failures_and_a_success_resets_the_count():
    breakers = EngineBreakers(["espeak"], fail_max=2, cooldown_s=30)
    with pytest.raises(Boom):
        breakers.call("espeak", fail)
    assert breakers.call("espeak", lambda: "ok") == "ok"  # not consecutive: the count starts again
    assert breakers.status("espeak") == {"state": "closed", "consecutive_failures": 0, "cooldown_s": 30}
    for _ in range(2):
        with pytest.raises(Boom):
            breakers.call("espeak", fail)
    assert breakers.status("espeak")["state"] == "open"
    called = []
    with pytest.raises(CircuitOpen):
        breakers.call("espeak", lambda: called.append(1))
    assert not called  # skipped without being tried


def test_half_open_lets_one_trial_through_at_a_time():
    breakers = EngineBreakers(["piper"], fail_max=1, cooldown_s=0.2)
    with pytest.raises(Boom):
        breakers.call("piper", fail)
    time.sleep(0.25)  # the cool-down is over: the next call is the trial
    trial_started, release = threading.Event(), threading.Event()
    outcome: list[str] = []

    def trial() -> str:
        trial_started.set()
        release.wait(5)
        return "trial ok"

    runner = threading.Thread(target=lambda: outcome.append(breakers.call("piper", trial)))
    runner.start()
    assert trial_started.wait(5)
    assert breakers.status("piper")["state"] == "half_open"
    with pytest.raises(CircuitOpen):  # a second call while the trial runs skips the engine
        breakers.call("piper", lambda: "second")
    release.set()
    runner.join(5)
    assert outcome == ["trial ok"]
    assert breakers.status("piper") == {"state": "closed", "consecutive_failures": 0, "cooldown_s": 0.2}


def test_a_failed_trial_opens_the_circuit_again():
    breakers = EngineBreakers(["piper"], fail_max=1, cooldown_s=0.2)
    with pytest.raises(Boom):
        breakers.call("piper", fail)
    time.sleep(0.25)
    with pytest.raises(Boom):
        breakers.call("piper", fail)
    assert breakers.status("piper")["state"] == "open"
    with pytest.raises(CircuitOpen):  # and for a whole new cool-down
        breakers.call("piper", lambda: "too early")


def test_an_interrupted_call_counts_as_a_failure():
    """Dramatiq's time limit raises a BaseException in the synthesis thread: the engine failed that job."""
    breakers = EngineBreakers(["piper"], fail_max=1, cooldown_s=30)

    def interrupted() -> None:
        raise KeyboardInterrupt  # a BaseException, as dramatiq's Interrupt is

    with pytest.raises(KeyboardInterrupt):
        breakers.call("piper", interrupted)
    assert breakers.status("piper")["state"] == "open"


@pytest.mark.integration
def test_circuits_are_shared_through_redis(redis_server):
    """Two worker processes' breakers on one Redis: failures seen by one open the circuit for the other."""
    first = EngineBreakers(["piper"], fail_max=2, cooldown_s=30, redis_url=redis_server.url, scope="shared-test")
    second = EngineBreakers(["piper"], fail_max=2, cooldown_s=30, redis_url=redis_server.url, scope="shared-test")
    other = EngineBreakers(["piper"], fail_max=2, cooldown_s=30, redis_url=redis_server.url, scope="other-db")
    with pytest.raises(Boom):
        first.call("piper", fail)
    with pytest.raises(Boom):
        second.call("piper", fail)
    assert first.status("piper")["state"] == second.status("piper")["state"] == "open"
    with pytest.raises(CircuitOpen):
        first.call("piper", lambda: "skipped")
    assert other.call("piper", lambda: "another deployment") == "another deployment"
