"""Where the product's memory per idle stream goes: tracemalloc and object counts, per stream.

`python -m bench.capacity_profile [--streams N]` starts the product under
tracemalloc (`python -m bench.capacity_profile serve`, otherwise the same
server as `metricstream serve`), warms it up, and has it dump a snapshot with
0 streams and again with N idle streams open. It prints the RSS growth per
stream, the part tracemalloc sees (Python's allocators), the allocation sites
and the object types that grew, each divided by N. tracemalloc slows the
server and costs memory of its own, so the absolute RSS here is not the
capacity benchmark's figure; the split is what this is for.
"""

import argparse
import gc
import json
import os
import pickle
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType

from bench import capacity_probe as probe
from bench import fixtures
from bench.capacity import warm_up
from bench.capacity_clients import Side, open_group, stop_clients
from bench.console import Warnings, say

DUMP_TIMEOUT_SECONDS = 120.0
# Deep enough to see past asyncio and uvloop to the code that asked for the memory.
TRACE_FRAMES = 12
STDLIB = f"/lib/python{sys.version_info.major}.{sys.version_info.minor}/"
DUMP_DIR_VARIABLE = "CAPACITY_PROFILE_DIR"
TOP = 30
# tracemalloc makes imports, and so the server's start, several times slower.
TRACED_START_TIMEOUT_SECONDS = 180.0


def _dump(_signum: int, _frame: FrameType | None) -> None:
    """SIGUSR1: write a tracemalloc snapshot and the live objects' counts and sizes by type."""
    directory = Path(os.environ[DUMP_DIR_VARIABLE])
    index = len(list(directory.glob("snapshot-*.pickle")))
    gc.collect()
    by_type: dict[str, list[int]] = {}
    for obj in gc.get_objects():
        entry = by_type.setdefault(type(obj).__qualname__, [0, 0])
        entry[0] += 1
        entry[1] += sys.getsizeof(obj)
    (directory / f"types-{index}.json").write_text(json.dumps(by_type))
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    partial = directory / f"snapshot-{index}.tmp"
    with partial.open("wb") as out:
        pickle.dump(snapshot, out)
    partial.rename(directory / f"snapshot-{index}.pickle")


def serve(port: int) -> None:
    """The product's server, traced; SIGUSR1 dumps."""
    tracemalloc.start(TRACE_FRAMES)
    signal.signal(signal.SIGUSR1, _dump)
    from metricstream import asgi  # noqa: F401  (sets Django up, as `metricstream serve` does)
    from metricstream.ops.server import server

    server("127.0.0.1", port).run()


def dump(pid: int, directory: Path) -> tracemalloc.Snapshot:
    index = len(list(directory.glob("snapshot-*.pickle")))
    os.kill(pid, signal.SIGUSR1)
    path = directory / f"snapshot-{index}.pickle"
    deadline = time.monotonic() + DUMP_TIMEOUT_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit("bench: the traced server wrote no snapshot")
        time.sleep(0.1)
    with path.open("rb") as source:
        return pickle.load(source)


def types_diff(directory: Path, streams: int) -> list[tuple[str, float, float]]:
    before = json.loads((directory / "types-0.json").read_text())
    after = json.loads((directory / "types-1.json").read_text())
    rows = []
    for name, (count, size) in after.items():
        count0, size0 = before.get(name, [0, 0])
        if count - count0 >= streams // 2:  # at least one per two streams
            rows.append((name, (count - count0) / streams, (size - size0) / streams))
    return sorted(rows, key=lambda row: -row[2])


def _short(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[-1]
    if STDLIB in filename:
        return filename.split(STDLIB)[-1]
    return filename.split("/work/main/")[-1]


def _owner(traceback: tracemalloc.Traceback) -> tuple[str, str]:
    """(package, file:line) of the innermost frame outside the standard library.

    Frames run from the outermost to the innermost; an Event's deque is charged
    to whoever created the Event, not to asyncio.
    """
    frames = list(traceback)
    chosen = next(
        (f for f in reversed(frames) if STDLIB not in f.filename or "site-packages" in f.filename),
        frames[-1],
    )
    short = _short(chosen.filename)
    return short.split("/")[0], f"{short}:{chosen.lineno}"


def report(
    streams: int, rss: tuple[int, int], snaps: list[tracemalloc.Snapshot], directory: Path
) -> None:
    growth = (rss[1] - rss[0]) / streams
    stats = snaps[1].compare_to(snaps[0], "traceback")
    traced = sum(s.size_diff for s in stats) / streams
    print(f"\n{streams:,} idle streams; per stream:")
    print(f"  RSS growth {growth:,.0f} B (tracemalloc's own bookkeeping included)")
    print(f"  tracemalloc (Python's allocators) {traced:,.0f} B")
    sites: Counter[tuple[str, str]] = Counter()
    blocks: Counter[tuple[str, str]] = Counter()
    owners: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for s in stats:
        package, owner = _owner(s.traceback)
        innermost = s.traceback[-1]
        site = f"{_short(innermost.filename)}:{innermost.lineno}"
        sites[(owner, site)] += s.size_diff
        blocks[(owner, site)] += s.count_diff
        owners[owner] += s.size_diff
        packages[package] += s.size_diff
    print("\nBy package that asked (bytes per stream):")
    for name, size in packages.most_common(10):
        print(f"  {size / streams:>9,.0f} B  {name}")
    print("\nBy line that asked (bytes per stream):")
    for name, size in owners.most_common(TOP):
        print(f"  {size / streams:>9,.0f} B  {name}")
    print("\nBy line that asked -> line that allocated (bytes, blocks per stream):")
    for key, size in sites.most_common(TOP):
        print(f"  {size / streams:>9,.0f} B {blocks[key] / streams:>6.2f}  {key[0]} -> {key[1]}")
    print("\nObject types that grew (gc-tracked; count and sys.getsizeof bytes per stream):")
    for name, count, size in types_diff(directory, streams)[:TOP]:
        print(f"  {size:>9,.0f} B {count:>6.2f}  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity_profile", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["serve"], help="(internal) the traced server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--tenants", type=int, default=100)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args.port)
        return 0
    fixtures.raise_open_files_limit()
    directory = Path(tempfile.mkdtemp(prefix="metricstream-capacity-profile-"))
    own = probe.CapacityRedis(directory, 1000)
    warnings = Warnings()
    with fixtures.environment("capacity-profile", own.url) as env:
        env[DUMP_DIR_VARIABLE] = str(directory)
        own.start()
        own.wait_ready()
        server: fixtures.Server | None = None
        side = Side("traced")
        try:
            seeded = fixtures.prepare_database(args.tenants, env)
            server = fixtures.Server(
                env, directory / "server.log", module=("bench.capacity_profile", "serve")
            )
            server.wait_ready(TRACED_START_TIMEOUT_SECONDS)
            staff = fixtures.form_login(server.base, seeded.staff_email, seeded.staff_password)
            target = probe.Target("traced", server, staff, own)
            from bench.capacity import Parameters

            p = Parameters([0, args.streams], 0, args.tenants, 5000, 100, False, 1000)
            warm_up(side, target, seeded, p, warnings)
            rss0 = probe.settle_rss(target.pid, side.tick).rss_bytes
            first = dump(target.pid, directory)
            count = open_group(side, target, seeded, 0, args.streams, 5000)
            say(f"traced: {count} streams open")
            rss1 = probe.settle_rss(target.pid, side.tick).rss_bytes
            second = dump(target.pid, directory)
            target.close()
            report(count, (rss0, rss1), [first, second], directory)
        finally:
            stop_clients(side.clients)
            if server is not None:
                server.stop()
            own.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
