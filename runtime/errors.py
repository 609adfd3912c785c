"""Errors that callers can cause. Each carries an HTTP status and a stable ``code``.

They build their own messages and become JSON responses only at the edge (``runtime.app``):
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(ApiError):
    status, code = 400, "invalid_input"


class NotFound(ApiError):
    status, code = 404, "not_found"


class PayloadTooLarge(ApiError):
    status, code = 413, "body_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class SynthesisFailed(ApiError):
    """Every engine of the chain failed for this request (the job records why)."""

    status, code = 502, "synthesis_failed"


class Timeout(ApiError):
    status, code = 504, "timeout"


class StreamAborted(Exception):
    """A streamed response cannot go on after its headers were sent. The connection is closed without
    the final chunk, so the caller sees a truncated transfer, never audio that silently ends early."""
