"""Memory of one embedded-mode service per engine, after its models are loaded and it has synthesised a
sentence: Piper (the packaged voice) and Coqui (the tiny VITS the tests build; needs `make coqui`), each
beside eSpeak NG as the fallback. The service process (web stack, worker threads) and its engine worker
processes (one per worker thread and engine, ``ENGINE_ISOLATION=process``), each counted, and the total.

    .venv/bin/python -m bench.worker_memory
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.common import process_tree, rss_mb, start_service
from tests.test_coqui import BUILD


def measure(env: dict[str, str], voice: str) -> tuple[float, list[float]]:
    service = start_service({**env, "DEFAULT_VOICE": voice})
    try:
        resp = httpx.post(service.url + "/v1/audio/speech", json={"input": "Measure me, please.",
                                                                  "response_format": "wav"}, timeout=120)
        assert resp.status_code == 200 and resp.headers["x-tts-engine"] == voice.split(":")[0], resp.headers
        children = [pid for pid in process_tree(service.proc.pid) if pid != service.proc.pid
                    and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        return rss_mb([service.proc.pid]), [rss_mb([pid]) for pid in children]
    finally:
        service.stop()


def main() -> None:
    rows = [("espeak only", measure({"ENGINES": "espeak"}, "espeak:en-us")),
            ("piper + espeak", measure({"ENGINES": "piper,espeak"}, "piper:en_US-joe-medium")),
            ("piper + espeak, no idle lane", measure({"ENGINES": "piper,espeak", "PIPER_IDLE_THREADS": "0"},
                                                     "piper:en_US-joe-medium")),
            ("piper + espeak, espeak=1", measure({"ENGINES": "piper,espeak", "ENGINE_PROCESSES": "espeak=1"},
                                                 "piper:en_US-joe-medium")),
            ("piper + espeak, thread", measure({"ENGINES": "piper,espeak", "ENGINE_ISOLATION": "thread"},
                                               "piper:en_US-joe-medium"))]
    model = Path(tempfile.mkdtemp(prefix="ef-coqui-")) / "tiny-vits"
    model.mkdir()
    subprocess.run([sys.executable, "-c", BUILD, str(model)], check=True, capture_output=True)
    rows.append(("coqui (tiny VITS) + espeak", measure({
        "ENGINES": "coqui,espeak", "COQUI_MODEL_PATH": str(model / "model.pth"),
        "COQUI_CONFIG_PATH": str(model / "config.json")}, "coqui:tiny-vits")))
    print(f"RSS after loading and one synthesis, embedded mode, {os.cpu_count()} cores (worker threads and engine "
          f"processes per engine follow the core count)")
    for name, (main_mb, children) in rows:
        parts = f" + {len(children)} engine processes ({' + '.join(f'{mb:.0f}' for mb in children)} MB)" \
            if children else " (engines in-process)"
        print(f"  {name:30} service {main_mb:5.0f} MB{parts} = {main_mb + sum(children):6.0f} MB")


if __name__ == "__main__":
    main()
