"""The raw Piper engine, in-process, in one of several thread layouts: the reference that bench.throughput
holds the service to. Runs as its own process (one per layout, so each has a clean ONNX runtime), loads
the voice once, then answers batches on stdin with texts per second on stdout:

    in:  {"texts": [...], "clients": 4}      out: {"rate": 3.1}

Layouts, with N = the number of cores:
  serial-wide   one ONNX session with N intra-op threads, one text at a time
  shared        one session with 1 intra-op thread, N texts at a time from N threads
  sessions      N sessions with 1 intra-op thread each, one per thread, N texts at a time
  sessions-wide N sessions with N intra-op threads each (spinning off), N texts at a time (oversubscribed;
                not in the default run: measured 0.88x of ``sessions`` on 2 cores)
Each text is synthesised whole by ``PiperVoice.synthesize`` (which splits it into sentences itself), as
Piper's own HTTP server does, and converted to 16-bit PCM bytes.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time

LAYOUTS = ("serial-wide", "shared", "sessions")  # the default run; also "sessions-wide"


def _voice(intra_threads: int, spin: bool = True):
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    from runtime.speech.engines.piper import default_voice_files

    model, config = default_voice_files()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = intra_threads
    options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(config=PiperConfig.from_dict(json.loads(config.read_text())), session=session)


def main() -> None:
    layout = sys.argv[1]
    cores = os.cpu_count() or 1
    if layout == "serial-wide":
        voices, slots = [_voice(cores)], 1
    elif layout == "shared":
        voices, slots = [_voice(1)] * cores, cores
    elif layout == "sessions":
        voices, slots = [_voice(1) for _ in range(cores)], cores
    elif layout == "sessions-wide":
        voices, slots = [_voice(cores, spin=False) for _ in range(cores)], cores
    else:
        raise SystemExit(f"layout must be one of {LAYOUTS}")

    def speak(voice, text: str) -> int:
        return sum(len(chunk.audio_int16_bytes) for chunk in voice.synthesize(text))

    speak(voices[0], "Warm up.")
    print(json.dumps({"ready": layout}), flush=True)
    for line in sys.stdin:
        batch = json.loads(line)
        todo: queue.Queue[str] = queue.Queue()
        for text in batch["texts"]:
            todo.put(text)
        failures: list[str] = []

        def work(voice, todo=todo, failures=failures) -> None:
            while True:
                try:
                    text = todo.get_nowait()
                except queue.Empty:
                    return
                if speak(voice, text) < 10_000:
                    failures.append(text)

        start = time.perf_counter()
        threads = [threading.Thread(target=work, args=(voices[n],)) for n in range(slots)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        print(json.dumps({"rate": len(batch["texts"]) / elapsed, "failures": len(failures)}), flush=True)


if __name__ == "__main__":
    main()
