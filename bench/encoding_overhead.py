"""Encoding overhead per response format vs the raw WAV path, on the same ~5 s of Piper speech, in-process.
Also shown as a share of the synthesis itself (what a cache miss pays for choosing that format).

    .venv/bin/python -m bench.encoding_overhead [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

from runtime.speech.audio import FORMATS, encode
from runtime.speech.engines.piper import PiperEngine

TEXT = "The quick brown fox jumps over the lazy dog, and then it naps in the warm afternoon sun."


def median_s(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    engine = PiperEngine(threads=1)
    engine.load()
    engine.synthesize(TEXT, engine.voice_name)  # warm
    synth = median_s(lambda: engine.synthesize(TEXT, engine.voice_name), args.runs)
    pcm = engine.synthesize(TEXT, engine.voice_name)
    wav = median_s(lambda: encode(pcm, "wav"), args.runs)
    print(f"{pcm.seconds:.2f}s of audio; synthesis {synth * 1000:.0f} ms; medians of {args.runs} runs")
    print(f"{'format':8}{'encode ms':>11}{'x wav path':>12}{'+% of synthesis':>17}{'bytes':>10}")
    for fmt in FORMATS:
        elapsed = median_s(lambda f=fmt: encode(pcm, f), args.runs)
        size = len(encode(pcm, fmt))
        print(f"{fmt:8}{elapsed * 1000:11.1f}{elapsed / wav:12.1f}{elapsed / synth * 100:16.1f}%{size:10}")


if __name__ == "__main__":
    main()
