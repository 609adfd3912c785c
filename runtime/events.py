"""Job-finished notifications, so a waiting request wakes the moment its audio is ready.

In-process (embedded mode) a worker thread wakes the event loop directly. With Redis, workers publish on
a channel and each web process listens. Waiters also re-read the job every ``poll_s`` seconds, so a lost
notification only costs latency, never a hung request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger

CHANNEL = "ef-speech:job-finished"


class JobEvents:
    def __init__(self, redis_url: str = "") -> None:
        self.redis_url = redis_url
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._redis = None
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()

    @contextmanager
    def subscribe(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set (from any thread or process) when ``job_id`` finishes."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[job_id]

    def _wake_local(self, job_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(job_id, ()))
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop closed
                pass

    def publish(self, job_id: str) -> None:
        """Announce that ``job_id`` finished (succeeded or failed)."""
        self._wake_local(job_id)
        if self.redis_url:
            try:
                self._client().publish(CHANNEL, job_id)
            except Exception as exc:
                logger.warning("could not publish job event: {}", exc)

    def _client(self):
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url)
        return self._redis

    def start_listening(self) -> None:
        """Web processes in Redis mode: wake local waiters on other processes' announcements."""
        if not self.redis_url or self._listener is not None:
            return
        self._listener = threading.Thread(target=self._listen, name="job-events", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                pubsub = self._client().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        self._wake_local(message["data"].decode())
                pubsub.close()
            except Exception as exc:
                logger.warning("job event listener lost Redis, retrying: {}", exc)
                self._stopping.wait(1.0)

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.join(timeout=3)
