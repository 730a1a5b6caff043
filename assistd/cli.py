"""The command line: ``assistd serve | migrate | --version``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from assistd import __version__
from assistd.config import Settings


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from assistd.app import create_app
    from assistd.backends.routing_config import ConfigError

    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
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
        # The SDK keeps connections alive between calls; idle ones may stay open a while.
        timeout_keep_alive=30,
    )
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistd", description="A self-hosted server for OpenAI's Assistants API v2."
    )
    parser.add_argument("--version", action="version", version=f"assistd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API server")
    serve.add_argument("--host", help="address to bind (default: ASSISTD_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: ASSISTD_PORT or 8000)")
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(handler=_migrate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic narrates every plugin it loads at INFO; only its warnings are news to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    sys.exit(args.handler(settings, args))
