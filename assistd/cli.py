"""The command line: ``assistd serve | worker | keys | status | migrate | --version``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import Iterator

from assistd import __version__, logs
from assistd.config import Settings


@contextlib.contextmanager
def _start_up() -> Iterator[None]:
    """The collector stays off while the process imports and builds what it keeps until it ends (the
    SDK's types, request models, routes: about 300,000 objects), then those are frozen out of its
    reach. Its passes over them cost a fifth of a start (2.5 s of CPU against 2.0, measured) and, left
    in its reach, a share of every later collection. The few cycles that became garbage meanwhile are
    frozen with them, once; collecting them first would cost more than they hold."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    with _start_up():
        import uvicorn

        from assistd.app import create_app
        from assistd.backends.routing_config import ConfigError

        host = args.host or settings.host
        port = settings.port if args.port is None else args.port
        if args.no_worker:
            if _embedded(settings, "serve --no-worker"):
                return 2
            settings.worker = False
        try:
            app = create_app(settings)
        except ConfigError as error:
            print(f"assistd: {error}", file=sys.stderr)
            return 2
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        # Uvicorn's loggers go through the root logger's handler (assistd.logs), as text or JSON.
        log_config=None,
        # The SDK keeps connections alive between calls; idle ones may stay open a while.
        timeout_keep_alive=30,
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    """Execute runs, and nothing else, until SIGTERM or SIGINT; then finish or hand back the runs in
    progress (ASSISTD_SHUTDOWN_GRACE_SECONDS)."""
    import signal

    with _start_up():
        from assistd.app import embeddings_backend, new_worker, running_engine
        from assistd.backends.routing import ModelRouter
        from assistd.backends.routing_config import ConfigError
        from assistd.store.blob_stores import blob_store_kind

        if _embedded(settings, "worker"):
            return 2
        try:
            router = ModelRouter.from_settings(settings)
            blob_store_kind(settings)
        except ConfigError as error:
            print(f"assistd: {error}", file=sys.stderr)
            return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with running_engine(settings, router, embeddings_backend(settings)) as engine:
            worker = new_worker(engine, settings, args.concurrency)
            worker.start()
            logging.getLogger("assistd.worker").info(
                "worker %s executing up to %d runs at once", worker.id, worker.concurrency
            )
            await stop.wait()
            await worker.stop(settings.shutdown_grace_seconds)

    asyncio.run(run())
    return 0


def _embedded(settings: Settings, command: str) -> bool:
    """Whether the database is the embedded SQLite one, which one process serves alone (said if so)."""
    from assistd.store.database import is_sqlite

    if is_sqlite(settings.effective_database_url):
        print(
            f"assistd: {command} needs a PostgreSQL database shared by the API nodes and the workers "
            "(ASSISTD_DATABASE_URL); with the embedded SQLite database `assistd serve` executes runs itself.",
            file=sys.stderr,
        )
        return True
    return False


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from assistd.store import migrate
    from assistd.store.database import Database

    async def run() -> str | None:
        database = Database.from_url(settings.effective_database_url)
        try:
            await migrate.upgrade(database)
            return await migrate.current_revision(database)
        finally:
            await database.close()

    revision = asyncio.run(run())
    print(f"database is at revision {revision}")
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    """Make, list and revoke API keys in the database the server uses."""
    from assistd.services.api_keys import ApiKeys
    from assistd.store import migrate
    from assistd.store.database import Database

    async def run() -> int:
        database = Database.from_url(settings.effective_database_url, pool_size=1)
        try:
            if settings.auto_migrate:
                await migrate.upgrade(database)
            keys = ApiKeys(database)
            if args.action == "create":
                made = await keys.create(args.project, args.name)
                print(made.secret)
                print(
                    f"{made.key.id} acts in project {made.key.project_name!r}. The key is shown only this "
                    "once: keep it now.",
                    file=sys.stderr,
                )
            elif args.action == "list":
                print("id\tproject\tname\tprefix\tcreated\tlast used\tstatus")
                for key in await keys.list_keys():
                    print(
                        "\t".join(
                            [
                                key.id,
                                key.project_name,
                                key.name or "",
                                f"{key.prefix}...",
                                _when(key.created_at),
                                _when(key.last_used_at),
                                "revoked" if key.revoked_at else "active",
                            ]
                        )
                    )
            elif not await keys.revoke(args.key_id):
                print(f"assistd: no active key {args.key_id}", file=sys.stderr)
                return 1
            else:
                print(f"{args.key_id} revoked", file=sys.stderr)
            return 0
        finally:
            await database.close()

    return asyncio.run(run())


def _status(settings: Settings, args: argparse.Namespace) -> int:
    """Runs by status, the queue, and the workers executing runs now, read from the database."""
    import time

    from sqlalchemy import func, select

    from assistd.runs import states
    from assistd.store import queue, tables
    from assistd.store.database import Database

    runs = tables.runs

    async def snapshot(database: Database) -> str:
        async with database.read() as conn:
            by_status = await queue.runs_by_status(conn)
            oldest_queued = await conn.scalar(
                select(func.min(runs.c.created_at)).where(runs.c.status == "queued")
            )
            workers = list(
                await conn.execute(
                    select(
                        runs.c.lease_owner,
                        func.count().label("runs"),
                        func.max(runs.c.lease_expires_at).label("lease"),
                    )
                    .where(runs.c.status.in_(("in_progress", "cancelling")), runs.c.lease_owner.is_not(None))
                    .group_by(runs.c.lease_owner)
                    .order_by(runs.c.lease_owner)
                )
            )
        clock = time.time()
        lines = [f"assistd status at {_when(int(clock))}", "runs by status:"]
        for status in states.ALL:
            lines.append(f"  {status:<16}{by_status.get(status, 0):>8}")
        wait = f", oldest waiting {int(clock - oldest_queued)} s" if oldest_queued else ""
        lines.append(f"queue: {by_status.get('queued', 0)} run(s){wait}")
        lines.append(f"workers executing runs: {len(workers)}")
        for row in workers:
            state = (
                "lease lapsed: worker gone?" if row.lease < clock else f"lease {row.lease - clock:.0f} s left"
            )
            lines.append(f"  {row.lease_owner}  {row.runs} run(s)  {state}")
        return "\n".join(lines)

    async def run() -> None:
        database = Database.from_url(settings.effective_database_url, pool_size=1)
        try:
            while True:
                text = await snapshot(database)
                if args.watch:
                    print("\033[H\033[J" + text, flush=True)  # clear the screen: a live view
                    await asyncio.sleep(args.watch)
                else:
                    print(text)
                    return
        finally:
            await database.close()

    with contextlib.suppress(KeyboardInterrupt):  # the end of --watch
        asyncio.run(run())
    return 0


def _when(timestamp: int | None) -> str:
    import datetime

    if timestamp is None:
        return "never"
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistd", description="A self-hosted server for OpenAI's Assistants API v2."
    )
    parser.add_argument("--version", action="version", version=f"assistd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API server")
    serve.add_argument("--host", help="address to bind (default: ASSISTD_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: ASSISTD_PORT or 8000)")
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="serve the API only; `assistd worker` processes on the same PostgreSQL execute the runs",
    )
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser("worker", help="execute runs (PostgreSQL scale-out), without the API")
    worker.add_argument(
        "--concurrency",
        type=_positive,
        help="runs executed at once (default: ASSISTD_WORKER_CONCURRENCY or 64)",
    )
    worker.set_defaults(handler=_worker)

    keys = commands.add_parser("keys", help="make, list and revoke API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="make a key (printed once) acting in a project")
    create.add_argument("--project", required=True, help="the project's name (made if new)")
    create.add_argument("--name", help="a name to tell the key by")
    key_actions.add_parser("list", help="every key: id, project, name, prefix, last use; never the secret")
    revoke = key_actions.add_parser("revoke", help="refuse a key from now on, on every node")
    revoke.add_argument("key_id", help="the key's id (key_...)")
    keys.set_defaults(handler=_keys)

    status = commands.add_parser(
        "status", help="runs by status, the queue and busy workers, from the database"
    )
    status.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C")
    status.set_defaults(handler=_status)

    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(handler=_migrate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    sys.exit(args.handler(settings, args))
