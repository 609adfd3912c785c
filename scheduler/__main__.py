"""``python -m scheduler``: the scheduler as its own process (scaled-out mode). Start two for safety: only the
one holding the lease runs jobs; the other takes over within ``SCHEDULER_LEASE_S`` if the first dies."""

from __future__ import annotations

import signal
import sys
import threading

from loguru import logger

from runtime import logging as runtime_logging
from runtime.settings import Settings, SettingsError
from scheduler.runner import Scheduler
from storage.db import open_database
from storage.migrations import migrate


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    runtime_logging.setup(settings.log_level, settings.log_json, settings.log_file, settings.log_rotation,
                          settings.log_retention)
    db = open_database(settings.database_url)
    migrate(db)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = Scheduler(settings)
    scheduler.start()
    while not stop.wait(1.0):
        pass
    logger.info("scheduler stopping")
    scheduler.stop()
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
