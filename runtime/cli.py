"""``python -m runtime serve [--host H] [--port P]``, ``python -m runtime worker``,
``python -m runtime models [--write-manifest]``, ``python -m runtime admin …``, ``python -m runtime keys …``,
the function deploys (``functions``, ``deploy``, ``promote``, ``rollback``: ``runtime.deploy.cli``) and
speech from the command line (``say``, ``batch``: ``runtime.say``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from loguru import logger

from runtime import logging as runtime_logging
from runtime.settings import Settings, SettingsError


def _serve(settings: Settings) -> int:
    import uvicorn

    from runtime.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=30, server_header=False,
                proxy_headers=False)  # the client address rule is runtime.security.addresses, not uvicorn's
    return 0


def _worker(settings: Settings) -> int:
    if settings.embedded:
        logger.error("`python -m runtime worker` needs REDIS_URL; without it the worker runs inside `serve`")
        return 2
    from runtime.services import Services

    services = Services.build(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    services.start_worker(load_in_background=False)
    logger.info("worker ready; engines loaded: {}", ", ".join(services.ready_engines()) or "none")
    while not stop.wait(1.0):
        pass
    logger.info("worker stopping: finishing jobs in flight")
    services.close()
    return 0


def _models(settings: Settings, write: bool) -> int:
    """List the configured engines' model files against the manifest, or record them in it."""
    from runtime.speech.engines import FACTORIES, EngineError, manifest

    engines, problems = {}, []
    for name in settings.engines:
        try:
            engines[name] = FACTORIES[name](settings)
        except EngineError as exc:
            problems.append(f"{name}: {exc}")
    path = settings.model_manifest_path
    if write:
        files = manifest.write(engines, path)
        print(f"wrote {path}: {len(files)} model file(s)")
        for file, entry in files.items():
            print(f"  {entry['sha256'][:16]}…  {entry['engine']:8} {file}")
    else:
        listed = manifest.load(path)
        if listed is None:
            print(f"no model manifest at {path}; write one with --write-manifest")
            return 1
        for engine in engines.values():
            try:
                manifest.verify(engine, listed, path)
                print(f"ok       {engine.name}")
            except EngineError as exc:
                problems.append(str(exc))
    for problem in problems:
        print(f"PROBLEM  {problem}", file=sys.stderr)
    return 1 if problems else 0


def _backup(settings: Settings) -> int:
    from storage.backup import BackupError, backup
    from storage.db import open_database
    from storage.migrations import migrate

    migrate(open_database(settings.database_url))
    try:
        done = backup(settings.database_url, settings.data_dir / "backups", settings.backup_keep)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"backed up to {settings.data_dir / 'backups' / done['file']} ({done['bytes']} bytes, verified)")
    return 0


def _restore(settings: Settings, file: str) -> int:
    """Refused while a worker or a scheduler is running: they would write to the database being replaced."""
    from pathlib import Path

    from runtime.workers import Liveness
    from scheduler.lease import Lease
    from storage.backup import RestoreRefused, restore
    from storage.db import open_database

    db = open_database(settings.database_url)
    try:
        live = [w.id for w in Liveness(settings.worker_dead_after_s).live_workers()]
        leader = Lease("", settings.scheduler_lease_s).holder_now()
    except Exception:  # no schema yet: nothing runs on it
        live, leader = [], None
    db.close()
    if live or leader:
        print(f"error: the service is running (workers {', '.join(live) or 'none'}; scheduler {leader or 'none'}); "
              "stop every process that uses this database, then restore", file=sys.stderr)
        return 1
    try:
        done = restore(settings.database_url, Path(file), settings.data_dir / "backups", settings.backup_keep)
    except RestoreRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"restored {done['restored']} (integrity {done['integrity']}); the replaced database is kept as "
          f"{done['replaced_kept_as']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime", description="ef speech functions")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (and, without REDIS_URL, the worker too)")
    serve.add_argument("--host", help="bind address (default HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default PORT or 8000)")
    sub.add_parser("worker", help="run a synthesis worker process (Redis mode)")
    models = sub.add_parser("models", help="check the configured model files against the model manifest")
    models.add_argument("--write-manifest", action="store_true", help="record the configured model files")
    sub.add_parser("backup", help="back the database up into DATA_DIR/backups (verified)")
    sub.add_parser("restore", help="replace the database with a backup (the service must be stopped)") \
        .add_argument("file", help="a backup file (DATA_DIR/backups/db-….sqlite)")
    say = sub.add_parser("say", help="speak one phrase into a file, through the cache, without a server")
    say.add_argument("text", help="what to say")
    say.add_argument("-o", "--out", required=True, help="the audio file to write (- for standard output); its "
                     "suffix picks the format unless --format does")
    batch = sub.add_parser("batch", help="pre-render a list of phrases (one per line) into the cache and a "
                           "directory; run it again to resume")
    batch.add_argument("phrases", help="a text file, one phrase per line (# comments; - for standard input)")
    batch.add_argument("--out", required=True, help="directory for the files (0001-first-words.mp3, …)")
    batch.add_argument("--parallel", type=int, help="phrases in flight at once (default: twice WORKER_THREADS)")
    for command in (say, batch):
        command.add_argument("--voice", help="a voice id (GET /api/voices) or alias; default DEFAULT_VOICE")
        command.add_argument("--format", help="mp3, opus, aac, flac, wav or pcm (checked as the API checks it)")
        command.add_argument("--speed", type=float, help="0.25 to 4.0 (default 1.0)")
    from runtime.deploy import cli as deploy_cli
    from runtime.security import cli as security_cli

    security_cli.add_commands(sub)
    deploy_cli.add_commands(sub)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            settings = settings.with_(**{k: v for k, v in (("host", args.host), ("port", args.port)) if v})
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "models":
        return _models(settings, args.write_manifest)
    if args.command in ("serve", "worker") and not settings.embedded:
        # Separate processes count into files that /metrics adds up (prometheus-client's multiprocess mode):
        # set before anything imports prometheus-client
        import os

        metrics_dir = settings.data_dir / "metrics"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    if args.command == "backup":
        return _backup(settings)
    if args.command == "restore":
        return _restore(settings, args.file)
    if args.command in ("admin", "keys"):
        runtime_logging.setup("WARNING", False)
        return security_cli.run(args, settings)
    if args.command in ("functions", "deploy", "promote", "rollback"):
        runtime_logging.setup("WARNING", False)
        return deploy_cli.run(args, settings)
    if args.command in ("say", "batch"):
        from runtime import say as speak

        runtime_logging.setup("WARNING", False)
        if args.command == "say":
            return speak.say(settings, args.text, args.out, args.voice, args.format, args.speed)
        return speak.batch(settings, args.phrases, args.out, args.voice, args.format or "mp3", args.speed,
                           args.parallel)
    runtime_logging.setup(settings.log_level, settings.log_json, settings.log_file, settings.log_rotation,
                          settings.log_retention)
    return _serve(settings) if args.command == "serve" else _worker(settings)
