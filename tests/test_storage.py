"""Disk cache (atomic writes), migrations, and the single-flight index, on a real SQLite file."""

from __future__ import annotations

import os

import pytest
from peewee import IntegrityError

from storage.cache import AudioCache
from storage.db import open_database
from storage.migrations import available, current_version, migrate
from storage.models import Job, utcnow

KEY = "ab" * 32


def test_atomic_write_and_read(tmp_path):
    cache = AudioCache(tmp_path)
    path = cache.write(KEY, "wav", b"RIFF....")
    assert path == tmp_path / "ab" / f"{KEY}.wav"
    assert path.read_bytes() == b"RIFF...."
    assert cache.exists(KEY, "wav") and not cache.exists(KEY, "mp3")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind


def test_empty_audio_is_never_cached(tmp_path):
    cache = AudioCache(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        cache.write(KEY, "wav", b"")
    assert not cache.exists(KEY, "wav")


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    cache = AudioCache(tmp_path)

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        cache.write(KEY, "wav", b"data")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_zero_length_file_does_not_count_as_cached(tmp_path):
    cache = AudioCache(tmp_path)
    cache.path(KEY, "wav").parent.mkdir(parents=True)
    cache.path(KEY, "wav").write_bytes(b"")
    assert not cache.exists(KEY, "wav")


@pytest.mark.parametrize("key", ["../../etc/passwd", "AB" * 32, "ab" * 31, ""])
def test_keys_are_validated(tmp_path, key):
    with pytest.raises(ValueError):
        AudioCache(tmp_path).path(key, "wav")


def test_migrations_apply_once(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert migrate(db) == [name for _, name in available()]
    assert migrate(db) == []
    assert current_version() == available()[-1][0]
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 10_000
    db.close()


def test_one_unfinished_job_per_key(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)

    def job(i, status):
        return Job.create(id=f"{i:032x}", key=KEY, status=status, text="t", voice="v", format="wav", speed=1.0,
                          created_at=utcnow())

    job(1, "queued")
    with pytest.raises(IntegrityError):
        job(2, "queued")
    Job.update(status="succeeded").where(Job.id == f"{1:032x}").execute()
    job(3, "running")  # allowed again once the first has finished
    job(4, "failed")
    db.close()


def test_sentence_files_skip_the_fsync_and_whole_answers_keep_it(tmp_path, monkeypatch):
    """A sentence of a longer text is a cache of a cache (a crash costs a synthesis); an answer is not."""
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    cache = AudioCache(tmp_path)
    cache.write("a" * 64, "wav", b"RIFF sentence", durable=False)
    assert synced == [] and cache.exists("a" * 64, "wav")
    cache.write("b" * 64, "wav", b"RIFF whole answer")
    assert len(synced) == 1
