"""Admin accounts and what is done to them, for the admin functions and the CLI alike; every change and
every login attempt is audited here. There is no default account and no default password: the first admin
is made with ``python -m runtime admin create NAME``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from runtime.errors import ApiError, InvalidInput, NotFound
from runtime.security import Security, audit, throttle, totp
from runtime.security.audit import DENIED, FAILURE, SUCCESS, THROTTLED
from runtime.security.passwords import WeakPassword, check_rules
from storage.models import Admin, utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class LoginRefused(ApiError):
    status, code = 401, "login_failed"


@dataclass(frozen=True)
class LoggedIn:
    admin: str
    token: str
    csrf: str


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput("an admin name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                           code="invalid_name")
    return name


def check_password(password: object, name: str) -> str:
    if not isinstance(password, str):
        raise InvalidInput("the password must be a string", code="invalid_password")
    try:
        check_rules(password, name)
    except WeakPassword as exc:
        raise InvalidInput(str(exc), code="weak_password") from None
    return password


def describe(row: Admin) -> dict:
    return {"name": row.name, "disabled": row.disabled, "totp": row.totp_secret is not None,
            "created_at": row.created_at.isoformat() + "Z",
            "password_changed_at": row.password_changed_at.isoformat() + "Z"}


def get(name: str) -> Admin:
    row = Admin.get_or_none(Admin.name == name)
    if row is None:
        raise NotFound(f"no admin named {name!r}", code="unknown_admin")
    return row


def create(security: Security, name: str, password: str, actor: str, client: str) -> Admin:
    check_name(name)
    check_password(password, name)
    if Admin.get_or_none(Admin.name == name) is not None:
        raise ApiError(f"an admin named {name!r} exists already", code="admin_exists", status=409)
    row = Admin.create(name=name, password_hash=security.passwords.hash(password))
    audit.record(actor, client, "admin.create", SUCCESS, name)
    return row


def set_disabled(security: Security, name: str, disabled: bool, actor: str, client: str) -> Admin:
    row = get(name)
    Admin.update(disabled=disabled).where(Admin.name == name).execute()
    ended = security.sessions.end_all(name) if disabled else 0
    audit.record(actor, client, "admin.disable" if disabled else "admin.enable", SUCCESS, name, sessions_ended=ended)
    return get(row.name)


def set_password(security: Security, name: str, password: str, actor: str, client: str,
                 keep_session: str | None = None) -> int:
    """A new password; ends the admin's sessions (all but ``keep_session``). Returns how many ended."""
    get(name)
    check_password(password, name)
    Admin.update(password_hash=security.passwords.hash(password), password_changed_at=utcnow()).where(
        Admin.name == name).execute()
    ended = security.sessions.end_all(name, keep=keep_session)
    audit.record(actor, client, "admin.password", SUCCESS, name, sessions_ended=ended)
    return ended


def login(security: Security, name: object, password: object, code: object, client: str) -> LoggedIn:
    """Check a login attempt: throttling, password (Argon2, re-hashed when the parameters changed), TOTP or a
    recovery code when enrolled. Every outcome is audited; the refusal never says which part was wrong."""
    if not isinstance(name, str) or not isinstance(password, str) or not name or len(name) > 64 \
            or len(password) > 1024 or (code is not None and not isinstance(code, str)):
        raise InvalidInput('send {"username": "...", "password": "...", "totp": "123456" (when enrolled)}',
                           code="invalid_login")
    actor = f"login:{name}"
    wait = throttle.wait_s(name, client)
    if wait > 0:
        audit.record(actor, client, "admin.login", THROTTLED, name, retry_after_s=round(wait, 1))
        seconds = max(1, int(wait + 0.999))
        raise ApiError(f"too many failed logins from this address; wait {seconds}s", code="login_throttled",
                       status=429, headers={"Retry-After": str(seconds)})
    row = Admin.get_or_none(Admin.name == name)
    ok = security.passwords.verify(row.password_hash if row else None, password)
    if not ok or row is None or row.disabled:
        throttle.failed(name, client)
        audit.record(actor, client, "admin.login", DENIED if (ok and row is not None) else FAILURE, name,
                     reason="disabled" if ok and row is not None else "bad credentials")
        raise LoginRefused("wrong name or password, or the account is disabled")
    if row.totp_secret:
        if not code:
            audit.record(actor, client, "admin.login", FAILURE, name, reason="totp required")
            raise LoginRefused("this admin uses a second factor: send the code from the app as totp",
                               code="totp_required")
        if not _second_factor(row, code):
            throttle.failed(name, client)
            audit.record(actor, client, "admin.login", FAILURE, name, reason="bad second factor")
            raise LoginRefused("the code is wrong or was used already", code="totp_invalid")
    throttle.succeeded(name, client)
    if security.passwords.needs_rehash(row.password_hash):
        Admin.update(password_hash=security.passwords.hash(password)).where(Admin.name == name).execute()
    token, csrf = security.sessions.create(name, client)
    audit.record(f"admin:{name}", client, "admin.login", SUCCESS, name)
    return LoggedIn(name, token, csrf)


def _second_factor(row: Admin, code: str) -> bool:
    step = totp.verify(row.totp_secret, code, row.totp_last_step)
    if step is not None:
        # only if no other request took this step meanwhile: a code works once
        taken = Admin.update(totp_last_step=step).where(
            (Admin.name == row.name) & ((Admin.totp_last_step.is_null()) | (Admin.totp_last_step < step))).execute()
        return taken == 1
    codes = json.loads(row.recovery_codes or "[]")
    digest = totp.recovery_digest(code)
    if digest in codes:
        codes.remove(digest)
        Admin.update(recovery_codes=json.dumps(codes)).where(Admin.name == row.name).execute()
        audit.record(f"admin:{row.name}", "", "admin.recovery_code", SUCCESS, row.name, left=len(codes))
        return True
    return False
