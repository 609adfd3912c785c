"""Time to the first audio byte of a streamed 2,000-character text vs the time to synthesise the whole text.
Target: <= 0.25x. Every run uses new texts (no sentence is in the cache). Runs alternate: a streamed
POST /v1/audio/speech (mp3, the OpenAI default), then a whole synthesis of another text of the same length
(POST /api/synthesize?wait=…, answered when the job has finished). Medians.

    .venv/bin/python -m bench.stream_ttfb [--runs 5] [--chars 2000] [--format mp3] [--env NAME=VALUE]
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from bench.common import start_service
from bench.throughput import texts


def long_text(seed: int, chars: int) -> str:
    parts, n = [], 0
    while sum(len(p) + 1 for p in parts) < chars:
        parts.extend(texts(1, seed * 100 + n))
        n += 1
    return " ".join(parts)[:chars].rsplit(".", 1)[0] + "."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--format", default="mp3")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the service, e.g. --env PIPER_IDLE_THREADS=0")
    args = parser.parse_args()

    service = start_service(dict(pair.split("=", 1) for pair in args.env))
    try:
        with httpx.Client(base_url=service.url, timeout=600) as client:
            def streamed(text: str) -> tuple[float, float]:
                start = time.perf_counter()
                with client.stream("POST", "/v1/audio/speech", json={
                        "model": "tts-1", "input": text, "voice": "alloy", "response_format": args.format}) as resp:
                    assert resp.status_code == 200 and resp.headers["x-cache"] == "miss", resp.headers
                    body = resp.iter_bytes()
                    next(body)
                    first = time.perf_counter() - start
                    size = sum(len(b) for b in body)
                assert size > 10_000
                return first, time.perf_counter() - start

            def whole(text: str) -> float:
                start = time.perf_counter()
                resp = client.post("/api/synthesize?wait=60", json={"text": text, "format": args.format})
                job = resp.json()
                while job["status"] in ("queued", "running"):  # longer than one wait: ask again
                    job = client.get(job["status_url"]).json()
                    time.sleep(0.02)
                assert job["status"] == "succeeded", job
                return time.perf_counter() - start

            streamed(long_text(9000, 300))  # warm the engine and the encoder
            firsts, stream_totals, wholes = [], [], []
            for run in range(args.runs):
                first, total = streamed(long_text(2 * run, args.chars))
                firsts.append(first)
                stream_totals.append(total)
                wholes.append(whole(long_text(2 * run + 1, args.chars)))
        f, w, t = statistics.median(firsts), statistics.median(wholes), statistics.median(stream_totals)
        print(f"{args.chars}-character texts, {args.format}, {args.runs} alternating runs, medians")
        def runs(values: list[float]) -> str:
            return " ".join(f"{x * 1000:.0f}" for x in values)

        print(f"first audio byte, streamed     {f * 1000:8.0f} ms   runs: {runs(firsts)}")
        print(f"whole synthesis (job finished) {w * 1000:8.0f} ms   runs: {runs(wholes)}")
        print(f"whole stream received          {t * 1000:8.0f} ms")
        print(f"ratio first byte / whole       {f / w:8.3f}x   (target <= 0.25x)")
    finally:
        service.stop()


if __name__ == "__main__":
    main()
