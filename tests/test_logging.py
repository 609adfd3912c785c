"""JSON log lines: parseable, with request ids, tracebacks included, stdlib logging routed in."""

from __future__ import annotations

import json
import logging

from loguru import logger

from runtime import logging as runtime_logging


def test_json_lines_with_request_id_and_exception(capsys):
    runtime_logging.setup("INFO", json_lines=True)
    token = runtime_logging.request_id.set("req-42")
    try:
        logger.info("hello {}", "world")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
        logging.getLogger("uvicorn.error").warning("from stdlib")
    finally:
        runtime_logging.request_id.reset(token)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["message"] == "hello world" and lines[0]["level"] == "INFO"
    assert lines[0]["request_id"] == "req-42" and lines[0]["time"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exception"]
    assert lines[2]["message"] == "from stdlib" and lines[2]["level"] == "WARNING"
    logger.remove()
