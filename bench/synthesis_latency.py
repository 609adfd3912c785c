"""Cache-miss POST /v1/audio/speech latency vs the raw in-process Piper call on the same text.
Target: <= 1.05x. Runs alternate (raw, service, raw, …) so both see the same machine conditions; the cached
file is deleted before every service run, so each one really synthesises (checked: X-Cache: miss).

    .venv/bin/python -m bench.synthesis_latency [--runs 15] [--cpu 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx

from bench.common import start_service
from runtime.speech.engines.piper import PiperEngine

TEXT = "The quick brown fox jumps over the lazy dog, and then it naps in the warm afternoon sun."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--cpu", type=int, default=1, help="pin both sides to this core (-1: no pinning)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the service, e.g. --env ENGINE_ISOLATION=thread")
    args = parser.parse_args()

    if args.cpu >= 0:
        # Both sides on the same core, so the comparison is not at the mercy of which core each process
        # lands on. Set before anything starts: the service and its engine processes inherit it, and the
        # service sees one usable core (no idle lane, whose threads would only fight over it).
        os.sched_setaffinity(0, {args.cpu})
    engine = PiperEngine(threads=1)  # the service's default: PIPER_THREADS=1
    engine.load()
    service = start_service(dict(pair.split("=", 1) for pair in args.env))
    try:
        with httpx.Client(base_url=service.url, timeout=120) as client:
            body = {"model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "wav"}

            breakdown: list[tuple[float, float]] = []

            def service_once() -> float:
                for path in (service.data_dir / "audio-cache").rglob("*.wav"):
                    path.unlink()
                start = time.perf_counter()
                resp = client.post("/v1/audio/speech", json=body)
                elapsed = time.perf_counter() - start
                assert resp.status_code == 200 and resp.headers["x-cache"] == "miss", resp.headers
                timings = client.get(f"/api/jobs/{resp.headers['x-job-id']}").json()["timings"]
                breakdown.append((timings["queued_s"], timings["synthesis_s"]))
                return elapsed

            def raw_once() -> float:
                start = time.perf_counter()
                engine.synthesize(TEXT, engine.voice_name)
                return time.perf_counter() - start

            for _ in range(2):  # warm both
                raw_once()
                service_once()
            raw, ours = [], []
            for _ in range(args.runs):
                raw.append(raw_once())
                ours.append(service_once())
        audio_s = engine.synthesize(TEXT, engine.voice_name).seconds
        r, s = statistics.median(raw), statistics.median(ours)
        print(f"text: {len(TEXT)} characters, {audio_s:.2f}s of audio; {args.runs} alternating runs, medians")
        print(f"raw in-process Piper         {r * 1000:8.1f} ms")
        print(f"POST /v1/audio/speech (miss) {s * 1000:8.1f} ms   (HTTP + job + queue + synthesis + WAV + cache write)")
        print(f"ratio service / raw          {s / r:8.2f}x   (target <= 1.05x)")
        print("  raw runs (ms):    ", " ".join(f"{x * 1000:.0f}" for x in raw))
        print("  service runs (ms):", " ".join(f"{x * 1000:.0f}" for x in ours))
        queued = statistics.median(q for q, _ in breakdown[2:])
        synth = statistics.median(x for _, x in breakdown[2:])
        print(f"  of which: queued {queued * 1000:.1f} ms, in the worker (synthesis + WAV + cache write + "
              f"DB) {synth * 1000:.1f} ms, HTTP + request handling {(s - queued - synth) * 1000:.1f} ms")
    finally:
        service.stop()


if __name__ == "__main__":
    main()
