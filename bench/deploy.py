"""Redeploying one function under load: failed requests and switch time for a deploy from the CLI (another
process: the service follows within FUNCTION_SYNC_S), a rollback and a canary promoted through the admin
API, against the reference every peer server offers for changing code: restarting the process.

A load generator (threads x keep-alive connections) calls GET /api/voices throughout; the new version
answers with a "revision" field, so every answer says which version served it. Reported per phase:
failed requests, switch time (from the command's return to the last request that still started on the old
version), the longest gap without a successful answer, and p99 latency against the steady state measured
in the same run.

    .venv/bin/python -m bench.deploy [--threads 4] [--processes 1|2]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from runtime.app import FUNCTIONS_DIR
from tests.support import Load, RedisServer, ServiceProcess, run_cli

SYNC_S = 1.0


def voices_v2() -> str:
    return (FUNCTIONS_DIR / "voices.py").read_text().replace('{"default": ', '{"revision": 2, "default": ')


def window(load: Load, since: float, until: float) -> list[tuple[float, float, int, int | None]]:
    return [a for a in load.answers if since <= a[0] < until]


def p99_ms(answers) -> float:
    durations = sorted(a[1] - a[0] for a in answers if a[2] == 200)
    return 1000 * durations[int(len(durations) * 0.99) - 1] if len(durations) > 10 else float("nan")


def gap_s(answers) -> float:
    """The longest time between two successful answers (how long callers saw no service)."""
    done = sorted(a[1] for a in answers if a[2] == 200)
    return max((b - a for a, b in itertools.pairwise(done)), default=float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=4, help="load threads per web process")
    parser.add_argument("--processes", type=int, default=1, choices=(1, 2),
                        help="web processes on one database (2: with redis-server)")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="ef-bench-deploy-"))
    env = {"FUNCTION_SYNC_S": str(SYNC_S), "ACCESS_LOG": "false"}
    redis = None
    if args.processes == 2:
        redis = RedisServer(base / "redis").start()
        env["REDIS_URL"] = redis.url
    webs = [ServiceProcess(base / "data", env=env).start() for _ in range(args.processes)]
    source = base / "voices_v2.py"
    source.write_text(voices_v2())
    rows = []
    try:
        for web in webs:
            web.wait_ready(timeout=120, path="/healthz")
        made = run_cli(webs[0], "keys", "create", "bench", "--admin")
        key = made.stdout.splitlines()[0].strip()
        admin = httpx.Client(base_url=webs[0].url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        load = Load([w.url for w in webs], threads=args.threads)
        with load:
            time.sleep(1.0)
            steady_from = time.monotonic()
            time.sleep(3.0)
            steady = window(load, steady_from, time.monotonic())
            steady_p99 = p99_ms(steady)

            def phase(name: str, act, revision: int, settle: float = SYNC_S + 1.5) -> None:
                began = time.monotonic()
                act()
                returned = time.monotonic()
                time.sleep(settle)
                answers = window(load, began, time.monotonic())
                rows.append((name, sum(a[2] != 200 for a in answers), load.switch_seconds(returned, revision),
                             gap_s(answers), p99_ms(answers) / steady_p99, len(answers)))

            def cli_deploy():
                done = run_cli(webs[0], "deploy", "voices", "--from", str(source))
                assert done.returncode == 0, done.stderr

            def api(path: str, **body):
                def call():
                    answer = admin.post(path, json=body or None)
                    assert answer.status_code in (200, 201), answer.text
                return call

            phase("deploy (CLI, another process)", cli_deploy, 2)
            phase("rollback (admin API)", api("/api/admin/functions/voices/rollback"), 1)
            phase("canary 50% (admin API)", api("/api/admin/functions/voices/versions", source=voices_v2(),
                                                canary=50), -1)
            phase("promote (admin API)", api("/api/admin/functions/voices/promote"), 2)
            phase("rollback --to 1 (CLI)", lambda: run_cli(webs[0], "rollback", "voices", "--to", "1"), 1)

            # the reference: changing code the way a server without deploys must, by restarting it
            def restart():
                for web in webs:
                    web.stop()
                    web.proc = None
                    web.start().wait_ready(timeout=120, path="/healthz")

            phase("reference: restart the process", restart, 1, settle=1.0)
        rate = len(steady) / 3.0
        print(f"\nload: {args.threads} thread(s) per process x {args.processes} process(es), GET /api/voices, "
              f"steady {rate:.0f} req/s, p99 {steady_p99:.1f} ms; FUNCTION_SYNC_S={SYNC_S:g}\n")
        print(f"{'phase':34} {'failed':>7} {'switch s':>9} {'max gap s':>10} {'p99 x steady':>13} {'requests':>9}")
        for name, failed, switch, gap, ratio, count in rows:
            switch_text = "-" if name.startswith(("canary", "reference")) else f"{switch:.2f}"
            print(f"{name:34} {failed:7d} {switch_text:>9} {gap:10.3f} {ratio:13.2f} {count:9d}")
        ok = [a for a in load.answers if a[2] == 200]
        print(f"\nall phases: {len(load.answers)} requests, {len(load.answers) - len(ok)} failed; mean latency "
              f"{statistics.mean(a[1] - a[0] for a in ok) * 1000:.1f} ms")
    finally:
        for web in webs:
            web.stop()
        if redis is not None:
            redis.stop()


if __name__ == "__main__":
    sys.exit(main())
