"""Synthesis throughput with 4 concurrent clients, distinct ~200-character texts (every request a cache miss),
vs Piper's own HTTP server (`python -m piper.http_server`, the `piper-tts[http]` extra) with the same voice on
127.0.0.1. Target: >= 2x. Rounds alternate (piper, ef, piper, …) so both see the same machine conditions;
both servers run with their defaults on the same machine.

    .venv/bin/python -m bench.throughput [--rounds 3] [--requests 16] [--clients 4]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.common import start_service
from runtime.speech.engines.piper import default_voice_files
from tests.support import free_port

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


def run_round(post, batch: list[str], clients: int) -> float:
    """Requests per second for ``batch`` sent by ``clients`` concurrent clients."""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for resp in pool.map(post, batch):
            if resp.status_code != 200 or len(resp.content) < 10_000:
                raise SystemExit(f"bad answer {resp.status_code}: {resp.content[:200]!r}")
    return len(batch) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=16, help="per round and server")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the ef service, e.g. --env WORKER_THREADS=1 --env PIPER_THREADS=2")
    args = parser.parse_args()

    piper = PiperServer()
    service = start_service(dict(pair.split("=", 1) for pair in args.env))
    ef = httpx.Client(base_url=service.url, timeout=300)
    pp = httpx.Client(base_url=f"http://127.0.0.1:{piper.port}", timeout=300)
    try:
        def ef_post(text: str) -> httpx.Response:
            resp = ef.post("/v1/audio/speech", json={"model": "tts-1", "input": text, "voice": "alloy",
                                                     "response_format": "wav"})
            if resp.status_code == 200 and resp.headers.get("x-cache") != "miss":
                raise SystemExit("a benchmark request was a cache hit; texts must be distinct")
            return resp

        def piper_post(text: str) -> httpx.Response:
            return pp.post("/synthesize", json={"text": text})

        run_round(ef_post, texts(args.clients, 900), args.clients)  # warm both
        run_round(piper_post, texts(args.clients, 901), args.clients)
        ours, theirs = [], []
        for n in range(args.rounds):
            theirs.append(run_round(piper_post, texts(args.requests, 2 * n), args.clients))
            ours.append(run_round(ef_post, texts(args.requests, 2 * n + 1), args.clients))
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"{args.clients} concurrent clients, {args.requests} distinct ~200-character texts per round, "
              f"{args.rounds} alternating rounds, medians")
        print(f"piper.http_server   {t:6.2f} req/s   rounds: " + " ".join(f"{x:.2f}" for x in theirs))
        print(f"ef (embedded)       {o:6.2f} req/s   rounds: " + " ".join(f"{x:.2f}" for x in ours))
        print(f"ratio ef / piper    {o / t:6.2f}x   (target >= 2x)")
    finally:
        ef.close()
        pp.close()
        service.stop()
        piper.stop()


if __name__ == "__main__":
    main()
