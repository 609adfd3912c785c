"""Login throttling: growing delays after failed logins, per account *and address*, and per address.

After ``FREE_PAIR`` failures for one account from one address, the next attempt from that address must
wait 1 s, then 2, 4, … up to ``MAX_DELAY_S`` (15 min) after the last failure; an address that fails
``FREE_ADDRESS`` times across accounts is slowed the same way. A throttled attempt is refused without
checking the password (and does not count as a failure). There is no account-wide lockout: an attacker
elsewhere cannot lock the real admin out of their own address. A success clears both counters.
The counters are rows in the database, so every web process shares them.
"""

from __future__ import annotations

import datetime as dt

from storage.models import LoginFailure, utcnow

FREE_PAIR = 3
FREE_ADDRESS = 10
MAX_DELAY_S = 900.0


def _delay(failures: int, free: int) -> float:
    return 0.0 if failures < free else min(MAX_DELAY_S, 2.0 ** (failures - free))


def _scopes(name: str, address: str) -> tuple[tuple[str, int], ...]:
    return ((f"pair:{name.lower()[:64]}|{address}", FREE_PAIR), (f"address:{address}", FREE_ADDRESS))


def wait_s(name: str, address: str) -> float:
    """Seconds before this account may be tried from this address again (0: now)."""
    now = utcnow()
    wait = 0.0
    for scope, free in _scopes(name, address):
        row = LoginFailure.get_or_none(LoginFailure.scope == scope)
        if row is not None:
            ready = row.last_at + dt.timedelta(seconds=_delay(row.failures, free))
            wait = max(wait, (ready - now).total_seconds())
    return wait


def failed(name: str, address: str) -> None:
    for scope, _ in _scopes(name, address):
        (LoginFailure.insert(scope=scope, failures=1, last_at=utcnow())
         .on_conflict(conflict_target=[LoginFailure.scope],
                      update={LoginFailure.failures: LoginFailure.failures + 1, LoginFailure.last_at: utcnow()})
         .execute())


def succeeded(name: str, address: str) -> None:
    LoginFailure.delete().where(LoginFailure.scope.in_([scope for scope, _ in _scopes(name, address)])).execute()

