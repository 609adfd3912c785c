"""loguru as the one log sink: JSON lines to stdout, stdlib logging (uvicorn, dramatiq, apscheduler)
routed into it, and a request id on every line logged while a request is handled."""

from __future__ import annotations

import contextvars
import logging
import sys

from loguru import logger

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


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


def setup(level: str = "INFO", json_lines: bool = True) -> None:
    logger.remove()
    logger.configure(patcher=_patch)
    logger.add(sys.stdout, level=level.upper(), serialize=json_lines, backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[_Intercept()], level=logging.INFO, force=True)
    for name in ("uvicorn", "uvicorn.error", "dramatiq", "apscheduler"):
        logging.getLogger(name).handlers = [_Intercept()]
        logging.getLogger(name).propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the runtime logs requests itself
