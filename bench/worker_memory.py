"""Memory of one service process per engine, after its model is loaded and it has synthesised a sentence:
Piper (the packaged voice) and Coqui (the tiny VITS the tests build; needs `make coqui`), each beside
eSpeak NG as the fallback, embedded mode (the web stack is in the figure too).

    .venv/bin/python -m bench.worker_memory
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.common import start_service
from tests.test_coqui import BUILD


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(env: dict[str, str], voice: str) -> float:
    service = start_service({**env, "DEFAULT_VOICE": voice})
    try:
        resp = httpx.post(service.url + "/v1/audio/speech", json={"input": "Measure me, please.",
                                                                  "response_format": "wav"}, timeout=120)
        assert resp.status_code == 200 and resp.headers["x-tts-engine"] == voice.split(":")[0], resp.headers
        return rss_mb(service.proc.pid)
    finally:
        service.stop()


def main() -> None:
    rows = [("espeak only", measure({"ENGINES": "espeak"}, "espeak:en-us")),
            ("piper + espeak", measure({"ENGINES": "piper,espeak"}, "piper:en_US-joe-medium"))]
    model = Path(tempfile.mkdtemp(prefix="ef-coqui-")) / "tiny-vits"
    model.mkdir()
    subprocess.run([sys.executable, "-c", BUILD, str(model)], check=True, capture_output=True)
    rows.append(("coqui (tiny VITS) + espeak", measure({
        "ENGINES": "coqui,espeak", "COQUI_MODEL_PATH": str(model / "model.pth"),
        "COQUI_CONFIG_PATH": str(model / "config.json")}, "coqui:tiny-vits")))
    print("service process RSS after loading and one synthesis (embedded mode, web stack included)")
    for name, mb in rows:
        print(f"  {name:28} {mb:7.0f} MB")


if __name__ == "__main__":
    main()
