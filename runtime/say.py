"""``python -m runtime say`` and ``python -m runtime batch``: speech from the command line through the
service's own pipeline (validation, cache, single-flight, queue, engines and their fallbacks), without an
HTTP server.

Without ``REDIS_URL`` the command runs a worker in its own process; engines load when first used (a
command that speaks from the cache loads none). With ``REDIS_URL`` the command only queues the jobs and
the running workers synthesise them. Either way what it renders lands in the audio cache, where the
service finds it: ``batch`` pre-renders announcements or flashcards before anyone asks.

``batch`` is resumable: an interrupted run, started again, finds what it had rendered in the cache (and
the jobs it left unfinished are picked up again), so only the rest is synthesised.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import ApiError
from runtime.settings import Settings

SUFFIX_FORMATS = {".mp3": "mp3", ".opus": "opus", ".ogg": "opus", ".aac": "aac", ".flac": "flac", ".wav": "wav",
                  ".pcm": "pcm"}
CALLER = "cli"


def format_for(out: str, given: str | None) -> str:
    """The format asked for, else the one the output file's name says, else MP3 (OpenAI's default)."""
    return given or SUFFIX_FORMATS.get(Path(out).suffix.lower(), "mp3")


class LocalSpeech:
    """The process's services for one command."""

    def __init__(self, settings: Settings) -> None:
        from runtime.services import Services

        self.settings = settings
        self.services = Services.build(settings)
        self._working = False

    def _work(self) -> None:
        """Something must be synthesised: a worker in this process, or (Redis) the job events to wait on."""
        if not self._working:
            self._working = True
            if self.settings.embedded:
                self.services.start_worker(load_in_background=True, preload=False)
            else:
                self.services.events.start_listening()

    def request(self, text: str, voice: str | None, fmt: str, speed: float | None):
        from runtime.speech.request import from_openai

        return from_openai({"input": text, "voice": voice, "response_format": fmt, "speed": speed},
                           self.services.catalog, self.settings.max_job_text_chars)

    async def render(self, text: str, voice: str | None, fmt: str, speed: float | None):
        """(the cached file, its Rendered) for one phrase; raises ApiError (bad input, failed synthesis)."""
        from runtime.speech.service import Rendered

        req = self.request(text, voice, fmt, speed)
        speech = self.services.speech
        key = speech.cached(req)
        if key is not None:
            rendered = Rendered(key, req.format, req.voice.engine, False, cache_hit=True)
        else:  # what speech.render does after its cache check (not checked twice: one miss counted)
            from starlette.concurrency import run_in_threadpool

            self._work()
            job, _ = await run_in_threadpool(speech.submit, req, CALLER)
            # a phrase of many sentences may take long: wait as long as its job may take
            rendered = await speech.outcome(job, max(self.settings.request_timeout_s, self.settings.job_timeout_s * 4))
        return self.services.cache.path(rendered.key, rendered.format), rendered

    def close(self) -> None:
        self.services.close()


def write_atomically(source: Path, target: Path) -> None:
    """``target`` appears whole or not at all (a copy to a temporary name, then a rename)."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


# --- say ---------------------------------------------------------------------------------------------------

def say(settings: Settings, text: str, out: str, voice: str | None, fmt: str | None, speed: float | None) -> int:
    fmt = format_for(out, fmt)
    local = LocalSpeech(settings)
    try:
        path, rendered = asyncio.run(local.render(text, voice, fmt, speed))
    except ApiError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 2 if exc.status < 500 else 1
    finally:
        local.close()
    if out == "-":
        sys.stdout.buffer.write(path.read_bytes())
        sys.stdout.buffer.flush()
    else:
        write_atomically(path, Path(out))
    source = "from the cache" if rendered.cache_hit else "synthesised"
    fallback = " (fallback)" if rendered.fallback else ""
    print(f"{out if out != '-' else 'stdout'}: {fmt}, {path.stat().st_size} bytes, {rendered.engine}{fallback}, "
          f"{source}", file=sys.stderr)
    return 0


# --- batch -------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    line: int  # in the phrases file
    text: str
    kind: str  # rendered, from cache, failed
    detail: str = ""


def read_phrases(file: str) -> list[tuple[int, str]]:
    """(line number, phrase): one phrase per line; blank lines and lines starting with ``#`` are skipped.
    ``-``: standard input."""
    lines = sys.stdin.read().splitlines() if file == "-" else Path(file).read_text(encoding="utf-8").splitlines()
    return [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]


def file_name(number: int, text: str, fmt: str, width: int) -> str:
    """``0007-good-morning-everyone.mp3``: the phrase's place in the list, then its first words."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:48].rstrip("-") or "phrase"
    return f"{number:0{width}d}-{slug}.{'ogg' if fmt == 'opus' else fmt}"


async def render_all(local: LocalSpeech, phrases: list[tuple[int, str]], out_dir: Path, voice: str | None,
                     fmt: str, speed: float | None, parallel: int, progress, outcomes: list[Outcome]) -> None:
    """Every phrase into the cache and ``out_dir`` (as ``file_name`` names it), ``parallel`` at a time; each
    outcome is appended to ``outcomes`` as it comes (so an interrupted run can say how far it got)."""
    from starlette.concurrency import run_in_threadpool

    width = max(4, len(str(len(phrases))))
    gate = asyncio.Semaphore(parallel)

    async def one(number: int, line: int, text: str) -> None:
        async with gate:
            try:
                path, rendered = await local.render(text, voice, fmt, speed)
                await run_in_threadpool(write_atomically, path, out_dir / file_name(number, text, fmt, width))
                outcomes.append(Outcome(line, text, "from cache" if rendered.cache_hit else "rendered"))
            except ApiError as exc:
                outcomes.append(Outcome(line, text, "failed", f"{exc.code}: {exc.message}"))
            progress.update(1)

    await asyncio.gather(*(one(n, line, text) for n, (line, text) in enumerate(phrases, 1)))


def summary(outcomes: Iterable[Outcome], total: int) -> str:
    counts = Counter(o.kind for o in outcomes)
    done = sum(counts.values())
    head = f"{counts['rendered']} rendered, {counts['from cache']} from cache, {counts['failed']} failed"
    return head if done == total else f"{head}; {total - done} not done (interrupted: run it again to resume)"


def batch(settings: Settings, file: str, out: str, voice: str | None, fmt: str, speed: float | None,
          parallel: int | None) -> int:
    from tqdm import tqdm

    try:
        phrases = read_phrases(file)
    except OSError as exc:
        print(f"cannot read {file}: {exc.strerror}", file=sys.stderr)
        return 2
    if not phrases:
        print(f"{file} has no phrases (one per line; # starts a comment)", file=sys.stderr)
        return 2
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    local = LocalSpeech(settings)
    outcomes: list[Outcome] = []
    progress = tqdm(total=len(phrases), unit="phrase", file=sys.stderr, dynamic_ncols=True)
    received: list[int] = []

    def interrupt(signum, _frame) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM (a service manager, `kill`) both end the batch with its summary, even where the
    # shell started it with SIGINT ignored (a background job): what was rendered is in the cache
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(render_all(local, phrases, out_dir, voice, fmt, speed,
                               parallel or max(2, settings.worker_threads * 2), progress, outcomes))
    except KeyboardInterrupt:
        progress.close()
        print(f"interrupted: {summary(outcomes, len(phrases))}", file=sys.stderr)
        return 128 + (received[0] if received else signal.SIGINT)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.close()
        local.close()
    for failed in (o for o in outcomes if o.kind == "failed"):
        print(f"line {failed.line} failed: {failed.detail} ({failed.text[:60]!r})", file=sys.stderr)
    print(f"{summary(outcomes, len(phrases))}; files in {out_dir}", file=sys.stderr)
    return 1 if any(o.kind == "failed" for o in outcomes) else 0
