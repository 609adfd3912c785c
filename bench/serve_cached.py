"""Cached GET /audio/<key>.wav (~100 KB) from one service process vs nginx (sendfile, one worker) serving
the same file; same load tool (wrk), same connections, access logs off on both. Target: >= 0.4x nginx.
A bare ASGI app under the same uvicorn is measured too: the ceiling for any Python app on this stack.
Rounds alternate between the servers; medians are reported.

    .venv/bin/python -m bench.serve_cached [--rounds 5] [--seconds 5] [--connections 32] [--access-log]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import httpx

from bench.common import Nginx, start_service, wrk
from tests.support import ROOT, free_port

# ~2.2 s of Piper speech at 22,050 Hz 16-bit mono ≈ 100 KB of WAV
TEXT = "A cached answer comes back fast."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--access-log", action="store_true", help="keep the service's access log on (JSON lines)")
    args = parser.parse_args()

    service = start_service({"ACCESS_LOG": "true"} if args.access_log else None)
    nginx = bare = None
    try:
        job = httpx.post(service.url + "/api/synthesize?wait=60", json={"text": TEXT, "format": "wav"},
                         timeout=90).json()
        rel = job["audio_url"].removeprefix("/audio/")
        key = rel.split(".")[0]
        path = service.data_dir / "audio-cache" / key[:2] / rel
        nginx = Nginx(path.parent)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.bare_asgi:app", "--port", str(bare_port),
                                 "--log-level", "warning", "--no-access-log"], cwd=ROOT,
                                env={"BENCH_FILE": str(path), "PATH": "/usr/bin:/bin"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(2)
        urls = {"nginx": nginx.url(rel), "ef": service.url + job["audio_url"],
                "bare": f"http://127.0.0.1:{bare_port}/x.wav"}
        body = httpx.get(urls["ef"]).content
        assert httpx.get(urls["nginx"]).content == body == httpx.get(urls["bare"]).content

        results: dict[str, list[float]] = {name: [] for name in urls}
        for _ in range(args.rounds):
            for name, url in urls.items():
                results[name].append(wrk(url, args.connections, args.seconds))
        med = {name: statistics.median(values) for name, values in results.items()}
        print(f"file: {len(body) / 1024:.1f} KiB; wrk -t2 -c{args.connections} -d{args.seconds}s x {args.rounds} "
              f"alternating rounds; one process each; medians")
        print(f"nginx sendfile                 {med['nginx']:9.0f} req/s   rounds {results['nginx']}")
        print(f"bare ASGI, same uvicorn        {med['bare']:9.0f} req/s   rounds {results['bare']}")
        print(f"ef GET /audio (cached)         {med['ef']:9.0f} req/s   rounds {results['ef']}")
        print(f"ratio ef / nginx               {med['ef'] / med['nginx']:9.2f}x   (target >= 0.40x)")
        print(f"ratio ef / bare ASGI           {med['ef'] / med['bare']:9.2f}x")
    finally:
        if bare:
            bare.terminate()
        if nginx:
            nginx.stop()
        service.stop()


if __name__ == "__main__":
    main()
