"""The API key store on a real SQLite database: digests only, expiry, revocation, batched last use."""

from __future__ import annotations

import pytest

from runtime.security import keys as keys_module
from runtime.security.keys import KeyStore, digest
from storage.db import open_database
from storage.migrations import migrate
from storage.models import ApiKey


@pytest.fixture()
def db(tmp_path):
    database = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(database)
    yield database
    database.close()


def test_only_the_digest_is_stored_and_last_use_is_written_in_batches(db, monkeypatch):
    store = KeyStore()
    row, token = store.create("app", "key", "admin:alice")
    assert token.startswith("efk_") and len(token) - 4 >= 43  # 256 bits, URL-safe
    stored = ApiKey.get_by_id(row.id)
    assert stored.digest == digest(token) and token not in str(stored.__data__)
    assert store.find(token).id == row.id
    assert ApiKey.get_by_id(row.id).last_used_at is None  # not a write per request
    monkeypatch.setattr(keys_module, "USE_FLUSH_S", 0.0)
    store.find(token)
    assert ApiKey.get_by_id(row.id).last_used_at is not None
    assert store.find("efk_" + token[4:][::-1]) is None and store.find("not-a-key") is None
    store.revoke(row.id)
    assert store.find(token) is None  # this process forgets it at once
