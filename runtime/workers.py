"""Worker liveness: each worker process keeps a heartbeat row; others judge from it whether a job that
says "running" is really being worked on."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import uuid
from collections.abc import Callable

from loguru import logger

from storage.models import WorkerHeartbeat, utcnow


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Liveness:
    """Decides whether a worker id belongs to a live worker. ``local_ids`` are this process's workers."""

    def __init__(self, dead_after_s: float) -> None:
        self.dead_after = dt.timedelta(seconds=dead_after_s)
        self.local_ids: set[str] = set()
        self.hostname = socket.gethostname()

    def is_alive(self, worker_id: str | None) -> bool:
        if not worker_id:
            return False
        if worker_id in self.local_ids:
            return True
        row = WorkerHeartbeat.get_or_none(WorkerHeartbeat.id == worker_id)
        if row is None or utcnow() - row.heartbeat_at > self.dead_after:
            return False
        if row.hostname == self.hostname:
            # Same machine: a worker whose process is gone (or whose pid is now ours) is dead at once,
            # so a restart right after a crash does not wait for the heartbeat to go stale.
            return row.pid != os.getpid() and _pid_alive(row.pid)
        return True

    def live_workers(self) -> list[WorkerHeartbeat]:
        cutoff = utcnow() - self.dead_after
        return list(WorkerHeartbeat.select().where(WorkerHeartbeat.heartbeat_at >= cutoff))


class Heartbeat:
    """Writes this worker's row every ``interval_s`` seconds from a daemon thread."""

    def __init__(self, liveness: Liveness, interval_s: float, ready_engines: Callable[[], list[str]]) -> None:
        self.id = f"{liveness.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.liveness = liveness
        self.interval_s = interval_s
        self.ready_engines = ready_engines
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> None:
        self.liveness.local_ids.add(self.id)
        WorkerHeartbeat.insert(id=self.id, hostname=self.liveness.hostname, pid=os.getpid(),
                               started_at=utcnow(), heartbeat_at=utcnow(),
                               engines=",".join(self.ready_engines())).execute()
        self._thread.start()

    def beat(self) -> None:
        WorkerHeartbeat.update(heartbeat_at=utcnow(), engines=",".join(self.ready_engines())).where(
            WorkerHeartbeat.id == self.id).execute()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except Exception as exc:  # a locked or unreachable database must not kill the thread
                logger.warning("heartbeat failed: {}", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            WorkerHeartbeat.delete().where(WorkerHeartbeat.id == self.id).execute()
        except Exception as exc:
            logger.warning("could not remove heartbeat row: {}", exc)
        self.liveness.local_ids.discard(self.id)
