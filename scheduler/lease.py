"""One leader among scheduler instances: a row in the database with a holder and an expiry.

Every instance tries to take or renew the lease every ``ttl / 3`` seconds. The holder renews it; another
instance takes it only once it has expired, so when the leader dies (even by kill -9) a standby leads
within ``ttl`` seconds. Taking and renewing are one conditional UPDATE each, atomic in SQLite and Postgres.
"""

from __future__ import annotations

import datetime as dt

from peewee import IntegrityError

from storage.models import SchedulerLease, utcnow

NAME = "scheduler"


class Lease:
    def __init__(self, holder: str, ttl_s: float, name: str = NAME) -> None:
        self.holder = holder
        self.ttl = dt.timedelta(seconds=ttl_s)
        self.name = name

    def acquire(self) -> bool:
        """Take or renew the lease; True while this instance holds it."""
        now = utcnow()
        taken = (SchedulerLease.update(holder=self.holder, expires_at=now + self.ttl,
                                       acquired_at=_acquired(self.holder, now))
                 .where((SchedulerLease.name == self.name)
                        & ((SchedulerLease.holder == self.holder) | (SchedulerLease.expires_at < now)))
                 .execute())
        if taken:
            return True
        try:
            SchedulerLease.create(name=self.name, holder=self.holder, acquired_at=now, expires_at=now + self.ttl)
            return True
        except IntegrityError:
            return False  # someone else holds it

    def release(self) -> None:
        """Give the lease up at once (graceful shutdown), so a standby need not wait for it to expire."""
        SchedulerLease.delete().where((SchedulerLease.name == self.name)
                                      & (SchedulerLease.holder == self.holder)).execute()

    def holder_now(self) -> str | None:
        row = SchedulerLease.get_or_none(SchedulerLease.name == self.name)
        return row.holder if row and row.expires_at >= utcnow() else None


def _acquired(holder: str, now: dt.datetime):
    """Keep ``acquired_at`` when renewing; set it when taking over."""
    from peewee import Case

    return Case(None, [(SchedulerLease.holder == holder, SchedulerLease.acquired_at)], now)
