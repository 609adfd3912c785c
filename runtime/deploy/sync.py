"""Every process follows the pointers: a thread reads ``function_pointers`` every ``FUNCTION_SYNC_S`` (one
small query) and serves what changed (``Deployments.sync``). Polling the database, not a message, because it
is the source of truth in both modes and a process that missed a message would never catch up; at the default
of 1 s it costs one indexed read of a few dozen rows a second."""

from __future__ import annotations

import threading

from loguru import logger


class FunctionSync:
    def __init__(self, deployments, every_s: float) -> None:
        self.deployments = deployments
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="function-sync", daemon=True)

    def start(self) -> FunctionSync:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.deployments.sync()
            except Exception:  # the database is away for a moment: keep serving, try again
                logger.opt(exception=True).warning("function sync failed; retrying in {}s", self.every_s)
