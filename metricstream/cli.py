"""The `metricstream` command: a short list of subcommands, each a Django management command."""

import os
import sys

COMMANDS = {
    "migrate": "create or upgrade the database schema",
    "serve": "run the web server (and, in the embedded default, the jobs)",
    "worker": "run the Celery worker that stores submitted metrics",
    "tenant": "create or list tenants (each gets an ingest token)",
    "token": "create, list or revoke a tenant's ingest tokens",
    "user": "create an operator account",
    "grant": "let an operator watch a tenant",
    "demo": "seed a demo operator and tenant, serve, and push synthetic metrics",
}

USAGE = """usage: metricstream COMMAND [options]

Watch a multi-tenant metrics platform live.

commands:
{commands}

Run `metricstream COMMAND --help` for a command's options.
Configuration comes from the environment (DATABASE_URL, REDIS_URL, SECRET_KEY, ...);
with none set, everything runs in one process on SQLite under ./var.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {text}" for name, text in COMMANDS.items())
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE.format(commands=listing))
        return 0
    if args[0] not in COMMANDS:
        print(
            f"metricstream: unknown command {args[0]!r}; see `metricstream --help`", file=sys.stderr
        )
        return 2

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        import django

        django.setup()
    except ImproperlyConfigured as exc:
        print(f"metricstream: configuration error: {exc}", file=sys.stderr)
        return 2

    from django.core.management import execute_from_command_line

    if args[0] in NEEDS_SCHEMA and not {"-h", "--help"} & set(args):
        problem = schema_problem()
        if problem:
            print(f"metricstream: {problem}", file=sys.stderr)
            return 2
    execute_from_command_line(["metricstream", *args])
    return 0


# Commands that read or write the application's tables.
NEEDS_SCHEMA = {"serve", "worker", "tenant", "token", "user", "grant"}


def schema_problem() -> str:
    """Why the database cannot serve the application yet, or "" if it can."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor
    from django.db.utils import Error

    connection = connections[DEFAULT_DB_ALIAS]
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Error as exc:
        return f"cannot reach the database: {exc}".strip()
    finally:
        connection.close()
    if pending:
        return "the database schema is not up to date; run `metricstream migrate` first"
    return ""


if __name__ == "__main__":
    sys.exit(main())
