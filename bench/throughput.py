"""Synthesis throughput with 4 concurrent clients, distinct ~200-character texts (every request a cache miss),
against references measured in the same run:

- the raw Piper engine in-process (``bench.raw_piper``), in every thread layout, each in its own process:
  the best of them is the engine's ceiling on this machine;
- Piper's own HTTP server (``python -m piper.http_server``, the ``piper-tts[http]`` extra), same voice,
  on 127.0.0.1.

Then the service with its defaults: embedded (one process) and, with ``--redis``, scaled out (a web
process, one worker process and a real ``redis-server``). Rounds alternate between all contenders, so
each sees the same machine conditions; every round uses new texts. Targets: the service >= 0.95x the raw
engine's best layout and >= 1x Piper's server, in both modes.

    .venv/bin/python -m bench.throughput [--rounds 5] [--requests 24] [--clients 4] [--redis]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import cpu_seconds, process_tree, start_service
from bench.raw_piper import LAYOUTS
from runtime.speech.engines.piper import default_voice_files
from tests.support import ROOT, RedisServer, ServiceProcess, free_port

WORDS = (
    "morning", "river", "garden", "window", "quiet", "lantern", "market", "yellow", "paper", "station",
    "orange", "gentle", "winter", "harbor", "village", "music", "kitchen", "silver", "forest", "meadow",
    "bright", "evening", "careful", "little", "journey", "story", "mountain", "basket", "thunder", "candle",
    "summer", "traveler", "bicycle", "library", "whisper", "captain",
)


def texts(count: int, seed: int) -> list[str]:
    """Distinct ~200-character texts of two or three sentences, so no request is a cache hit."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        sentences, length = [], 0
        while length < 190:
            words = [rng.choice(WORDS) for _ in range(rng.randint(6, 11))]
            sentence = " ".join(words).capitalize() + "."
            sentences.append(sentence)
            length += len(sentence) + 1
        out.append(f"Number {seed * 1000 + n}. " + " ".join(sentences)[:200].rsplit(" ", 1)[0] + ".")
    return out


class PiperServer:
    def __init__(self) -> None:
        model, _ = default_voice_files()
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "piper.http_server", "-m", str(model),
                                      "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/voices", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("piper.http_server did not start (is flask installed? pip install -r requirements-dev.txt)")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class RawPiper:
    """``bench.raw_piper`` in one layout, as a child process answering batches."""

    def __init__(self, layout: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.raw_piper", layout], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if "ready" not in self.proc.stdout.readline():
            raise SystemExit(f"bench.raw_piper {layout} did not start")

    def round(self, batch: list[str], clients: int) -> float:
        self.proc.stdin.write(json.dumps({"texts": batch, "clients": clients}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if answer["failures"]:
            raise SystemExit(f"the raw engine produced no audio for {answer['failures']} text(s)")
        return answer["rate"]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class RedisMode:
    """The service scaled out: redis-server, a web process and one worker process."""

    def __init__(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="ef-bench-redis-"))
        self.redis = RedisServer(base / "redis").start()
        env = {"REDIS_URL": self.redis.url, "ACCESS_LOG": "false", "LOG_JSON": "true"}
        self.worker = ServiceProcess(base / "data", command="worker", env=env).start()
        self.web = ServiceProcess(base / "data", env=env).start().wait_ready(timeout=120)
        self.url = self.web.url

    def stop(self) -> None:
        self.web.stop()
        self.worker.stop()
        self.redis.stop()


class CpuMeter:
    """Cores used by a service's processes (and their engine worker processes) while it is measured: the
    service's own work (HTTP, jobs, streaming) apart from the engines'."""

    def __init__(self, pids: list[int]) -> None:
        self.roots = pids
        self.service_s = self.engines_s = self.wall_s = 0.0

    def measure(self, work: Callable[[], float]) -> float:
        engines = [pid for root in self.roots for pid in process_tree(root) if pid not in self.roots]
        before = [cpu_seconds(p) for p in self.roots], [cpu_seconds(p) for p in engines]
        start = time.perf_counter()
        rate = work()
        self.wall_s += time.perf_counter() - start
        self.service_s += sum(cpu_seconds(p) for p in self.roots) - sum(before[0])
        self.engines_s += sum(cpu_seconds(p) for p in engines) - sum(before[1])
        return rate

    def summary(self) -> str:
        return (f"cores used: service {self.service_s / self.wall_s:.2f}, engine processes "
                f"{self.engines_s / self.wall_s:.2f} (of {os.cpu_count()})")


def run_round(post: Callable[[str], httpx.Response], batch: list[str], clients: int) -> float:
    """Requests per second for ``batch`` sent by ``clients`` concurrent clients."""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for resp in pool.map(post, batch):
            if resp.status_code != 200 or len(resp.content) < 10_000:
                raise SystemExit(f"bad answer {resp.status_code}: {resp.content[:200]!r}")
    return len(batch) / (time.perf_counter() - start)


def service_post(client: httpx.Client) -> Callable[[str], httpx.Response]:
    def post(text: str) -> httpx.Response:
        resp = client.post("/v1/audio/speech", json={"model": "tts-1", "input": text, "voice": "alloy",
                                                     "response_format": "wav"})
        if resp.status_code == 200 and resp.headers.get("x-cache") != "miss":
            raise SystemExit("a benchmark request was a cache hit; texts must be distinct")
        return resp

    return post


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=24, help="per round and contender")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--redis", action="store_true", help="also the scaled-out mode (web + 1 worker + Redis)")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="raw engine layouts to measure")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the ef service, e.g. --env WORKER_THREADS=1 --env PIPER_THREADS=2")
    args = parser.parse_args()
    env = dict(pair.split("=", 1) for pair in args.env)

    stops: list[Callable[[], None]] = []
    contenders: dict[str, Callable[[list[str]], float]] = {}
    try:
        for layout in args.layouts.split(","):
            raw = RawPiper(layout)
            stops.append(raw.stop)
            contenders[f"raw Piper, {layout}"] = lambda batch, raw=raw: raw.round(batch, args.clients)
        piper = PiperServer()
        stops.append(piper.stop)
        pp = httpx.Client(base_url=f"http://127.0.0.1:{piper.port}", timeout=300)
        stops.append(pp.close)
        contenders["piper.http_server"] = lambda batch: run_round(
            lambda text: pp.post("/synthesize", json={"text": text}), batch, args.clients)
        service = start_service(env)
        stops.append(service.stop)
        ef = httpx.Client(base_url=service.url, timeout=300)
        stops.append(ef.close)
        meters: dict[str, CpuMeter] = {"ef, embedded": CpuMeter([service.proc.pid])}
        contenders["ef, embedded"] = lambda batch: meters["ef, embedded"].measure(
            lambda: run_round(service_post(ef), batch, args.clients))
        if args.redis:
            redis_mode = RedisMode()
            stops.append(redis_mode.stop)
            efr = httpx.Client(base_url=redis_mode.url, timeout=300)
            stops.append(efr.close)
            meters["ef, Redis + 1 worker"] = CpuMeter([redis_mode.web.proc.pid, redis_mode.worker.proc.pid])
            contenders["ef, Redis + 1 worker"] = lambda batch: meters["ef, Redis + 1 worker"].measure(
                lambda: run_round(service_post(efr), batch, args.clients))

        for n, measure in enumerate(contenders.values()):  # warm every contender
            measure(texts(args.clients, 900 + n))
        for meter in meters.values():
            meter.service_s = meter.engines_s = meter.wall_s = 0.0
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        seed = 0
        for n in range(args.rounds):
            # every other round in reverse order, so no contender always runs first (or last) in a round
            for name, measure in (list(contenders.items()) if n % 2 == 0 else reversed(contenders.items())):
                rates[name].append(measure(texts(args.requests, seed)))
                seed += 1
    finally:
        for stop in reversed(stops):
            stop()

    medians = {name: statistics.median(values) for name, values in rates.items()}
    # The engine's ceiling: its best layout (by median). The machine's speed drifts between rounds (a VM
    # with neighbours), so each ratio is taken within its round, then the median of the ratios.
    raw_best = max((name for name in rates if name.startswith("raw")), key=medians.get)
    best = rates[raw_best]
    print(f"{args.clients} concurrent clients, {args.requests} distinct ~200-character texts per round, "
          f"{args.rounds} alternating rounds, medians; {os.cpu_count()} cores; service settings: "
          f"{', '.join(args.env) or 'defaults'}")
    for name, values in rates.items():
        print(f"  {name:28} {medians[name]:6.2f} texts/s   rounds: " + " ".join(f"{x:.2f}" for x in values))
    for name in (n for n in rates if n.startswith("ef")):
        to_raw = [ours / ref for ours, ref in zip(rates[name], best, strict=True)]
        to_piper = [ours / ref for ours, ref in zip(rates[name], rates["piper.http_server"], strict=True)]
        print(f"  {name:28} {statistics.median(to_raw):5.2f}x {raw_best} (target >= 0.95x; "
              f"rounds {' '.join(f'{x:.2f}' for x in to_raw)}), {statistics.median(to_piper):.2f}x "
              f"piper.http_server (target >= 1x; rounds {' '.join(f'{x:.2f}' for x in to_piper)})")
        print(f"  {'':28} {meters[name].summary()}")


if __name__ == "__main__":
    main()
