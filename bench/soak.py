"""A bounded load run: 60 seconds of 4 clients against the service in embedded mode with its defaults but a
small cache cap (8 MiB, eviction every 5 s) and a small memory cache (4 MiB, so a leak is not hidden behind
a cache filling up). Seven requests in ten are new sentences (misses), three repeat a recent one (hits).

Prints: requests and errors; the RSS of the service and its engine processes after a warm-up of the same
load (onnxruntime's memory arenas grow to the largest input seen, then stay) and at the end (target: growth
< 10%); the cache's size after every eviction run against the cap (target: never over);
the largest size seen between runs.

    .venv/bin/python -m bench.soak [--seconds 60] [--clients 4] [--warmup 30]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import threading
import time

import httpx

from bench.common import process_tree, rss_mb, start_service
from bench.throughput import texts

CAP = 8 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=30, help="seconds of the same load before measuring")
    args = parser.parse_args()
    service = start_service({"CACHE_MAX_BYTES": str(CAP), "EVICTION_INTERVAL_S": "5", "SCHEDULER_LEASE_S": "1",
                             "MEMORY_CACHE_BYTES": str(4 * 1024 * 1024)})
    fresh = iter(texts(100_000, seed=int(time.time())))
    said: list[str] = []
    lock = threading.Lock()
    counts = {"requests": 0, "errors": 0, "hits": 0}
    errors: list[str] = []

    def one(client: httpx.Client, rng: random.Random) -> None:
        with lock:
            repeat = said and rng.random() < 0.3
            text = rng.choice(said[-50:]) if repeat else next(fresh)
        answer = client.post("/v1/audio/speech", json={"input": text, "response_format": "wav"})
        with lock:
            counts["requests"] += 1
            if answer.status_code != 200:
                counts["errors"] += 1
                errors.append(f"{answer.status_code} {answer.text[:200]}")
            else:
                counts["hits"] += answer.headers.get("x-cache") == "hit"
                if not repeat:
                    said.append(text)

    def client_loop(seed: int, until: float) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=service.url, timeout=120) as client:
            while time.monotonic() < until:
                one(client, rng)

    def run(seconds: float) -> None:
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=client_loop, args=(n, until)) for n in range(args.clients)]
        for t in threads:
            t.start()
        largest = 0
        while any(t.is_alive() for t in threads):
            with sqlite3.connect(service.data_dir / "db.sqlite") as db:
                largest = max(largest, db.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM cache_entries")
                              .fetchone()[0])
            time.sleep(0.5)
        for t in threads:
            t.join()
        return largest

    try:
        run(args.warmup)  # warm-up: engines, their memory arenas, caches, the first eviction runs
        start_rss = rss_mb(process_tree(service.proc.pid))
        start_each = {pid: rss_mb([pid]) for pid in process_tree(service.proc.pid)}
        with sqlite3.connect(service.data_dir / "db.sqlite") as db:
            first_run = db.execute("SELECT COALESCE(MAX(id), 0) FROM scheduler_runs").fetchone()[0]
        before = dict(counts)
        largest = run(args.seconds)
        end_rss = rss_mb(process_tree(service.proc.pid))
        end_each = {pid: rss_mb([pid]) for pid in process_tree(service.proc.pid)}
        time.sleep(6)  # one more eviction run after the load
        with sqlite3.connect(service.data_dir / "db.sqlite") as db:
            runs = [json.loads(row[0]) for row in db.execute(
                "SELECT figures FROM scheduler_runs WHERE job = 'evict' AND outcome = 'success' AND id > ?",
                (first_run,))]
        requests = counts["requests"] - before["requests"]
        errs = counts["errors"] - before["errors"]
        after = [r["bytes"] for r in runs]
        growth = (end_rss - start_rss) / start_rss
        print(f"{args.seconds:.0f} s, {args.clients} clients: {requests} requests "
              f"({counts['hits'] - before['hits']} cache hits), {errs} errors (target 0)")
        print(f"RSS of the service and its engine processes: {start_rss:.0f} MB after warm-up, {end_rss:.0f} MB "
              f"at the end: {growth * 100:+.1f}% (target < +10%)")
        print(f"cache cap {CAP / 2**20:.0f} MiB; after each of {len(runs)} eviction runs: "
              f"{max(after) / 2**20 if after else 0:.1f} MiB at most (target <= cap); largest between runs "
              f"{largest / 2**20:.1f} MiB; {sum(r.get('evicted', 0) for r in runs)} entries evicted")
        print("  per process (MB, warm-up -> end):", ", ".join(
            f"{pid}: {start_each.get(pid, 0):.0f} -> {end_each.get(pid, 0):.0f}" for pid in sorted(end_each)))
        for line in errors[:5]:
            print("  error:", line)
    finally:
        service.stop()


if __name__ == "__main__":
    main()
