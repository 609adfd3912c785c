"""The audit log: who did what, from where, with what outcome. Appended here; the application has no code
that changes or deletes a line. Details are JSON; values under names that suggest a secret are masked
before they are written (defence in depth: callers pass no secrets)."""

from __future__ import annotations

import json

from loguru import logger

from storage.models import AuditEvent

SUCCESS, FAILURE, DENIED, THROTTLED = "success", "failure", "denied", "throttled"
_SECRET_WORDS = ("password", "token", "secret", "cookie", "csrf", "recovery", "otp_code")


def record(actor: str, client: str, action: str, outcome: str, target: str = "", **details: object) -> None:
    safe = {name: ("***" if any(word in name.lower() for word in _SECRET_WORDS) else value)
            for name, value in details.items()}
    AuditEvent.create(actor=actor[:200], client=client[:64], action=action[:64], target=str(target)[:200],
                      outcome=outcome, details=json.dumps(safe, default=str, ensure_ascii=False))
    logger.bind(audit=True).info("audit: {} {} {} {} from {}", actor, action, target, outcome, client)


def describe(row: AuditEvent) -> dict:
    return {"id": row.id, "at": row.at.isoformat() + "Z", "actor": row.actor, "client": row.client,
            "action": row.action, "target": row.target, "outcome": row.outcome, "details": json.loads(row.details)}
