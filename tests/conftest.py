from __future__ import annotations

import httpx
import pytest

from tests.support import PostgresServer, RedisServer, ServiceProcess, running_service


@pytest.fixture(scope="session")
def service(tmp_path_factory) -> ServiceProcess:
    """One real embedded-mode service (SQLite, in-process worker, Piper + eSpeak NG) for the session."""
    with running_service(tmp_path_factory.mktemp("svc") / "data") as proc:
        yield proc


@pytest.fixture()
def client(service) -> httpx.Client:
    with httpx.Client(base_url=service.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> RedisServer:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
