"""Cache eviction on a real database and cache directory: LRU under the cap, TTL, pins, running jobs'
audio and sentences, orphans; and through a service: pin by text, hits keep entries, run now."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid

import httpx
import pytest

from storage.cache import AudioCache
from storage.db import open_database
from storage.eviction import evict
from storage.migrations import migrate
from storage.models import CacheEntry, CachePin, Job, utcnow
from tests.support import ServiceProcess, run_cli

KB = 1024


@pytest.fixture()
def cache(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)
    yield AudioCache(tmp_path / "cache")
    db.close()


def entry(cache: AudioCache, n: int, days_ago: float, size: int = 100 * KB) -> str:
    key = f"{n:064x}"
    cache.write(key, "wav", b"x" * size)
    when = utcnow() - dt.timedelta(days=days_ago)
    CacheEntry.create(key=key, format="wav", path=cache.relpath(key, "wav"), size_bytes=size, engine="espeak",
                      voice="espeak:en-us", audio_seconds=1.0, created_at=when, last_access_at=when)
    return key


def test_least_recently_used_go_first_and_protected_entries_stay(cache):
    keys = [entry(cache, n, days_ago=10 - n) for n in range(8)]  # keys[0] least recently used
    CachePin.create(key=keys[0], format="wav", pinned_by="admin:alice")
    Job.create(id="a" * 32, key=keys[1], status="queued", text="t", voice="v", format="wav")
    Job.create(id="b" * 32, key="f" * 64, status="running", text="t", voice="v", format="wav",
               chunk_keys=f"{keys[2]},{'e' * 64}")
    forgotten = []
    figures = evict(cache, max_bytes=500 * KB, ttl_days=0, forget=lambda k, f: forgotten.append(k))
    left = {e.key for e in CacheEntry.select()}
    # 800 KB over a 500 KB cap: down to 90% (450 KB), least recently used first, protected ones skipped
    assert left == {keys[0], keys[1], keys[2], keys[7]}
    assert figures["evicted"] == 4 and figures["bytes_freed"] == 400 * KB and set(forgotten) == set(keys[3:7])
    assert all(cache.exists(k, "wav") for k in left) and not any(cache.exists(k, "wav") for k in keys[3:7])
    assert figures["bytes"] == 400 * KB and figures["pinned"] == 1


def test_entries_unused_past_the_ttl_are_dropped_unless_pinned(cache):
    old, pinned, fresh = entry(cache, 1, 100), entry(cache, 2, 100), entry(cache, 3, 1)
    CachePin.create(key=pinned, format="wav", pinned_by="admin:alice")
    figures = evict(cache, max_bytes=10**9, ttl_days=90)
    assert figures["expired"] == 1
    assert {e.key for e in CacheEntry.select()} == {pinned, fresh} and not cache.exists(old, "wav")


def test_orphans_are_removed_but_not_files_a_running_job_may_still_index(cache):
    indexed = entry(cache, 1, 1)
    gone = entry(cache, 2, 1)
    cache.path(gone, "wav").unlink()  # a row whose file is missing
    stray = f"{3:064x}"
    cache.write(stray, "wav", b"y" * KB)
    old = time.time() - 3600
    os.utime(cache.path(stray, "wav"), (old, old))  # a file without a row, an hour old
    recent = f"{4:064x}"
    cache.write(recent, "wav", b"z" * KB)  # written just now: a running job may index it when it ends
    figures = evict(cache, max_bytes=10**9, ttl_days=0)
    assert figures["orphan_rows"] == 1 and figures["orphan_files"] == 1
    assert cache.exists(indexed, "wav") and cache.exists(recent, "wav") and not cache.exists(stray, "wav")
    assert {e.key for e in CacheEntry.select()} == {indexed}


def run_now(c: httpx.Client, admin: dict, job: str) -> dict:
    run = c.post(f"/api/admin/scheduler/{job}/run", headers=admin).json()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = c.get("/api/admin/scheduler", params={"job": job}, headers=admin).json()["runs"]
        done = next((r for r in runs if r["id"] == run["id"] and r["finished_at"]), None)
        if done:
            return done
        time.sleep(0.3)
    raise AssertionError(f"the {job} run did not finish")


def test_through_the_service_pins_and_hits_keep_entries_under_the_cap(tmp_path):
    proc = ServiceProcess(tmp_path / "data", env={"ENGINES": "espeak", "CACHE_MAX_BYTES": str(1024 * KB),
                                                  "EVICTION_INTERVAL_S": "86400", "SCHEDULER_LEASE_S": "1"})
    key = run_cli(proc, "keys", "create", "ops", "--admin").stdout.strip()
    try:
        proc.start().wait_ready()
        with httpx.Client(base_url=proc.url, timeout=60) as c:
            admin = {"Authorization": f"Bearer {key}"}
            doorbell = {"text": "Someone is at the front door.", "voice": "espeak:en-us", "format": "wav"}
            pinned = c.post("/api/admin/cache/pins", json={**doorbell, "note": "doorbell"}, headers=admin)
            assert pinned.status_code == 201
            first = c.post("/v1/audio/speech", json={"input": doorbell["text"], "voice": "espeak:en-us",
                                                      "response_format": "wav"})
            assert first.headers["etag"].strip('"') == f"{pinned.json()['key']}.wav"
            phrases = [f"Phrase number {n} about the {uuid.uuid4().hex[:8]} garden, said slowly and clearly "
                       f"so that it takes a while." for n in range(40)]
            for text in phrases:
                assert c.post("/v1/audio/speech", json={"input": text, "voice": "espeak:en-us",
                                                        "response_format": "wav"}).status_code == 200
            before = c.get("/api/admin/cache", headers=admin).json()
            assert before["bytes"] > 1024 * KB  # over the cap
            done = run_now(c, admin, "evict")
            assert done["outcome"] == "success" and done["figures"]["evicted"] > 0, done
            after = c.get("/api/admin/cache", headers=admin).json()
            assert after["bytes"] <= 0.9 * 1024 * KB and after["pins"][0]["note"] == "doorbell"
            again = c.get(f"/audio/{pinned.json()['key']}.wav")
            assert again.status_code == 200  # the pinned phrase survived
            assert c.get("/audio/" + first.headers["etag"].strip('"')).status_code == 200

            # The engine's model changes: the pin's key is the old model's, and the new model's audio does
            # not exist yet. The next eviction run moves the pin and renders the phrase before anyone asks.
            key = pinned.json()["key"]
            with proc.db() as db:
                db.execute("UPDATE cache_pins SET key = ? WHERE key = ?", ("0" * 64, key))
                db.execute("DELETE FROM cache_entries WHERE key = ?", (key,))
            (proc.data_dir / "audio-cache" / key[:2] / f"{key}.wav").unlink()
            done = run_now(c, admin, "evict")
            assert done["outcome"] == "success" and done["figures"]["pins_rerendered"] == 1, done
            assert c.get("/api/admin/cache", headers=admin).json()["pins"][0]["key"] == key
            deadline = time.monotonic() + 30
            while c.get(f"/audio/{key}.wav").status_code != 200:
                assert time.monotonic() < deadline, "the pinned phrase was not rendered again"
                time.sleep(0.3)
    finally:
        proc.stop()


def test_a_hit_recorded_in_a_batch_moves_an_entry_to_the_back_of_the_queue(cache):
    from storage.access import AccessRecorder

    keys = [entry(cache, n, days_ago=10 - n) for n in range(4)]
    recorder = AccessRecorder()
    recorder.touch(keys[0])  # the oldest, served again (by the audio function)
    recorder.touch_path(f"/audio/{keys[1]}.wav")  # and by the edge micro-cache
    recorder.touch_path("/docs/index.html")  # not audio: ignored
    assert CacheEntry.get_by_id(keys[0]).last_access_at < utcnow() - dt.timedelta(days=5)  # not written yet
    assert recorder.flush() == 2
    evict(cache, max_bytes=250 * KB, ttl_days=0)
    assert {e.key for e in CacheEntry.select()} == {keys[0], keys[1]}
