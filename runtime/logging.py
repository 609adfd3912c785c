"""loguru as the one log sink: JSON lines to stdout, stdlib logging (uvicorn, dramatiq, apscheduler)
routed into it, and a request id (and the function with its version, ``openai_speech@3``) on every line
logged while a request is handled."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import sys
import traceback

from loguru import logger

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
function: contextvars.ContextVar[str] = contextvars.ContextVar("function", default="")  # "name@version"


class _Intercept(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def _patch(record) -> None:
    rid = request_id.get()
    if rid:
        record["extra"]["request_id"] = rid
        serving = function.get()
        if serving:
            record["extra"]["function"] = serving


def _json_line(record) -> str:
    """One compact JSON object per line: time, level, logger, message, request_id and other extras, and the
    traceback when there is one. (loguru's ``serialize=True`` writes ~15 fields and measured 134 us a line
    here against ~57 us for this.)"""
    entry = {"time": record["time"].astimezone(datetime.UTC).isoformat(timespec="milliseconds"),
             "level": record["level"].name, "logger": record["name"], "message": record["message"]}
    entry.update((k, v) for k, v in record["extra"].items() if k != "_json")
    if record["exception"] is not None:
        exc = record["exception"]
        entry["exception"] = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
    record["extra"]["_json"] = json.dumps(entry, default=str, ensure_ascii=False)
    return "{extra[_json]}\n"


def setup(level: str = "INFO", json_lines: bool = True, file: str = "", rotation: str = "50 MB",
          retention: str = "14 days") -> None:
    """Log to stdout (JSON lines, or loguru's text); with ``file`` also to that file as JSON lines, rotated
    at ``rotation`` (a size or an interval) and kept for ``retention`` (loguru's notation). Written
    synchronously (loguru's sinks are thread-safe): a queued sink would lose its last lines when uvicorn ends
    the process by re-raising SIGTERM. Engine worker processes log to stdout only."""
    logger.remove()
    logger.configure(patcher=_patch)
    if json_lines:
        logger.add(sys.stdout, level=level.upper(), format=_json_line, backtrace=False, diagnose=False)
    else:
        logger.add(sys.stdout, level=level.upper(), backtrace=False, diagnose=False)
    if file:
        logger.add(file, level=level.upper(), format=_json_line, backtrace=False, diagnose=False,
                   rotation=rotation, retention=retention)
    logging.basicConfig(handlers=[_Intercept()], level=logging.INFO, force=True)
    for name in ("uvicorn", "uvicorn.error", "dramatiq", "apscheduler"):
        logging.getLogger(name).handlers = [_Intercept()]
        logging.getLogger(name).propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the runtime logs requests itself
    # APScheduler logs every run of every job at INFO (the lease tick is every few seconds); the scheduler
    # logs each maintenance run itself
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
