"""``python -m runtime admin …`` and ``python -m runtime keys …``: accounts and keys from the machine's shell
(the first admin is made here). Passwords come from an interactive prompt or ``--password-stdin``, never
from the command line (argv is visible to every user in ``ps``). Each change is audited as ``cli:<user>``."""

from __future__ import annotations

import getpass
import sys

from runtime.errors import ApiError
from runtime.security import Security, admins, audit
from runtime.security.keys import describe
from runtime.settings import Settings
from storage.db import open_database
from storage.migrations import migrate
from storage.models import Admin, ApiKey

CLIENT = "local"


def add_commands(sub) -> None:
    admin = sub.add_parser("admin", help="admin accounts: create, list, disable, enable, reset-password")
    verbs = admin.add_subparsers(dest="verb", required=True)
    for verb, helptext in (("create", "create an admin (asks for the password)"),
                           ("reset-password", "set a new password (ends the admin's sessions)")):
        cmd = verbs.add_parser(verb, help=helptext)
        cmd.add_argument("name")
        cmd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    verbs.add_parser("list", help="list the admins")
    for verb in ("disable", "enable"):
        verbs.add_parser(verb, help=f"{verb} an admin" + (" (ends their sessions)" if verb == "disable" else "")
                         ).add_argument("name")
    keys = sub.add_parser("keys", help="API keys: create, list, revoke")
    verbs = keys.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="create a key and print it (once)")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="level admin (default: key)")
    create.add_argument("--expires", type=float, metavar="DAYS", help="expire after DAYS days")
    verbs.add_parser("list", help="list the keys (prefixes only)")
    verbs.add_parser("revoke", help="revoke a key by its id").add_argument("id")


def run(args, settings: Settings) -> int:
    migrate(open_database(settings.database_url))  # the schema is created or upgraded as the service would
    security = Security(settings)
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.command == "admin":
            return _admin(args, security, actor)
        return _keys(args, security, actor)
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ApiError("the two passwords differ", code="mismatch")
    return first


def _admin(args, security: Security, actor: str) -> int:
    if args.verb == "list":
        for row in Admin.select().order_by(Admin.name):
            flags = ", ".join(f for f, on in (("disabled", row.disabled), ("totp", row.totp_secret)) if on)
            print(f"{row.name}{f'  ({flags})' if flags else ''}")
        return 0
    if args.verb == "create":
        admins.check_name(args.name)
        admins.create(security, args.name, _password(args), actor, CLIENT)
        print(f"created admin {args.name}")
    elif args.verb == "reset-password":
        admins.get(args.name)
        ended = admins.set_password(security, args.name, _password(args), actor, CLIENT)
        print(f"new password set for {args.name}; {ended} session(s) ended")
    else:
        admins.set_disabled(security, args.name, args.verb == "disable", actor, CLIENT)
        print(f"{args.verb}d admin {args.name}")
    return 0


def _keys(args, security: Security, actor: str) -> int:
    if args.verb == "create":
        row, token = security.keys.create(args.name, "admin" if args.admin else "key", actor, args.expires)
        audit.record(actor, CLIENT, "key.create", audit.SUCCESS, row.id, name=args.name, level=row.level)
        print(token)
        print(f"key {row.id} ({row.level}) created; the line above is the key, shown only this once",
              file=sys.stderr)
        return 0
    if args.verb == "list":
        for row in ApiKey.select().order_by(ApiKey.created_at):
            k = describe(row)
            state = "revoked" if k["revoked_at"] else (f"expires {k['expires_at']}" if k["expires_at"] else "active")
            print(f"{k['id']}  {k['prefix']}…  {k['level']:5}  {state:30}  {k['name']}")
        return 0
    row = security.keys.revoke(args.id)
    if row is None:
        print(f"error: no API key {args.id}", file=sys.stderr)
        return 1
    audit.record(actor, CLIENT, "key.revoke", audit.SUCCESS, args.id, name=row.name)
    print(f"revoked key {args.id} ({row.name})")
    return 0
