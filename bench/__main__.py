"""`python -m bench [latency|recovery|overload|browser] ...`; with no subcommand, all in turn."""

import argparse
import sys
import textwrap
from types import ModuleType

from bench import (
    browser,
    capacity,
    fanout,
    ingest,
    latency_curve,
    overload,
    performance,
    recovery,
    runner,
)
from bench.console import say

# In the order `python -m bench` runs them.
BENCHMARKS: list[ModuleType] = [
    runner,
    ingest,
    latency_curve,
    capacity,
    fanout,
    recovery,
    overload,
    browser,
    performance,  # last: the figures and plots from the files the others wrote
]
EPILOG = (
    "environment: DATABASE_URL (PostgreSQL server to use; only its host, port and "
    "credentials are taken: each benchmark drops, recreates and leaves for inspection "
    "the database metricstream_bench_<benchmark>), REDIS_URL (latency only: recovery and overload "
    "start a redis-server of their own on a spare port), SECRET_KEY"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Metricstream benchmarks, against a real `metricstream serve`. With no "
            "subcommand, every benchmark runs in turn with its defaults. Results go to "
            "bench/results/<benchmark>.json."
        ),
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for module in BENCHMARKS:
        # Module docstrings are laid out already; one-paragraph descriptions are wrapped.
        description = getattr(module, "DESCRIPTION", None)
        sub = commands.add_parser(
            module.NAME,
            help=module.SUMMARY,
            description=textwrap.fill(description, 79) if description else module.__doc__,
            epilog=textwrap.fill(EPILOG, 79),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(module=module)
    return parser


def run_one(module: ModuleType, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    params, problems = module.parameters(args)
    if problems:
        parser.error("; ".join(problems))
    return module.run(params)


def run_all(parser: argparse.ArgumentParser) -> int:
    """Every benchmark with its defaults; one failing does not stop the others."""
    failed: list[str] = []
    for module in BENCHMARKS:
        say(f"=== {module.NAME} ===")
        sub = argparse.ArgumentParser()
        module.add_arguments(sub)
        try:
            params, _ = module.parameters(sub.parse_args([]))
            if module.run(params) != 0:
                failed.append(module.NAME)
        except SystemExit as exc:
            print(exc, file=sys.stderr)
            failed.append(module.NAME)
    if failed:
        say(f"failed: {', '.join(failed)}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.benchmark is None:
        return run_all(parser)
    return run_one(args.module, args, parser)


if __name__ == "__main__":
    sys.exit(main())
