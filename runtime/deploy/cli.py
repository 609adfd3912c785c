"""``python -m runtime functions [NAME]``, ``deploy NAME --from FILE [--note TEXT] [--canary PCT]
[--set OPTION=VALUE …]``, ``promote NAME`` and ``rollback NAME [--to N]``: the deploys from the machine's
shell, on the same database as the service (which follows within ``FUNCTION_SYNC_S``; it need not run).
NAME is a function module (``speech``, ``admin.users``) or any function it declares (``openai_speech``).
Each change is audited as ``cli:<user>``."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from pathlib import Path

from runtime.errors import ApiError

CLIENT = "local"


def add_commands(sub) -> None:
    listing = sub.add_parser("functions", help="list the functions, their versions, traffic split and history")
    listing.add_argument("name", nargs="?", help="one function module (or function): its whole history")
    listing.add_argument("--json", action="store_true", help="as JSON")
    deploy = sub.add_parser("deploy", help="check and activate a new version of one function module")
    deploy.add_argument("name", help="function module or function name")
    deploy.add_argument("--from", dest="file", help="the new source (default: the serving version's, for --set)")
    deploy.add_argument("--note", default="", help="why (kept with the version)")
    deploy.add_argument("--canary", type=int, metavar="PCT", help="send PCT %% of callers to it (promote later)")
    deploy.add_argument("--set", dest="options", action="append", default=[], metavar="OPTION=VALUE",
                        help="override an @function option (timeout_s=10, concurrency=4, config.KEY=VALUE); "
                             "VALUE is JSON or a string")
    sub.add_parser("promote", help="make a function module's canary serve 100%").add_argument("name")
    rollback = sub.add_parser("rollback", help="end the canary, or serve the previous (or --to) version again")
    rollback.add_argument("name")
    rollback.add_argument("--to", type=int, metavar="N", help="the version to serve")


def parse_options(pairs: list[str]) -> dict:
    options: dict = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ApiError(f"--set takes OPTION=VALUE, got {pair!r}", code="bad_options")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        if name.startswith("config."):
            options.setdefault("config", {})[name[len("config."):]] = value
        else:
            options[name] = value
    return options


def deployments_for(settings):
    """The registry and deploys as the service builds them, on the settings' database."""
    from runtime.app import FUNCTIONS_DIR, Context
    from runtime.deploy.deployer import Deployments
    from runtime.options import default_layers
    from runtime.registry import CanaryPolicy, Registry, discover
    from runtime.security import Security
    from storage.db import open_database
    from storage.migrations import migrate

    migrate(open_database(settings.database_url))
    security = Security(settings)
    shipped = discover(FUNCTIONS_DIR)
    registry = Registry(shipped, default_layers(settings, security), canary=CanaryPolicy())
    registry.ctx = Context(settings, registry, security)  # no speech services here: a self-test needing them fails
    deployments = Deployments(settings, registry, shipped)
    deployments.start_up()
    return deployments


def run(args, settings) -> int:
    actor = f"cli:{getpass.getuser()}"
    try:
        deployments = deployments_for(settings)
        if args.command == "functions":
            return _list(deployments, args)
        if args.command == "deploy":
            source = Path(args.file).read_text(encoding="utf-8") if args.file else None
            if source is None and not args.options:
                raise ApiError("deploy needs --from FILE (or --set to change options of the serving version)",
                               code="bad_request")
            done = asyncio.run(deployments.deploy(args.name, source, actor, CLIENT, args.note, args.canary,
                                                  parse_options(args.options)))
        elif args.command == "promote":
            done = deployments.promote(args.name, actor, CLIENT)
        else:
            done = deployments.rollback(args.name, actor, CLIENT, args.to)
    except ApiError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(done.get("message") or f"{done['module']}: v{done['active']} serves")
    if done.get("changed", True):
        print(f"{done['module']}: serving v{done['active']}" + (f", canary v{done['canary']} at {done['canary_pct']}%"
                                                               if done.get("canary") else ""))
    return 0


def _list(deployments, args) -> int:
    if args.name:
        entry = deployments.history(args.name)
        if args.json:
            print(json.dumps(entry, indent=2))
            return 0
        _summary([entry])
        print()
        for v in entry["versions"]:
            mark = "*" if v["version"] == entry["active"] else ("c" if v["version"] == entry["canary"] else " ")
            options = f"  options {json.dumps(v['options'])}" if v["options"] else ""
            print(f"{mark} v{v['version']:<4} {v['created_at'][:19]}  {v['origin']:8} {v['created_by']:<20} "
                  f"{v['sha256'][:12]}  {v['note']}{options}")
        return 0
    entries = deployments.listing()
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        _summary(entries)
    return 0


def _summary(entries: list[dict]) -> None:
    print(f"{'MODULE':<22} {'ACTIVE':>6}  {'TRAFFIC':<18} {'CHANGED':<20} FUNCTIONS")
    for e in entries:
        traffic = ", ".join(f"v{n} {pct}%" for n, pct in e["traffic"].items())
        print(f"{e['module']:<22} {'v' + str(e['active']):>6}  {traffic:<18} {e['changed_at'][:19]:<20} "
              f"{', '.join(e['functions'])}")
