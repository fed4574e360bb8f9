"""CPU time of processes and of the whole machine, read from /proc (Linux only).

Used to tell where the CPU went during the measurement window: server, load
generator, committers, PostgreSQL, Redis, and everything else on the machine.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Services whose every process is summed (these are not our children).
SERVICES = {"postgres": "postgres", "redis": "redis-server"}


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_cpu_seconds() -> tuple[float, float, int]:
    """(busy, total) CPU seconds of all cores since boot, and the number of cores."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return 0.0, 0.0, 1
    values = [int(v) for v in lines[0].split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return (total - idle) / _TICKS, total / _TICKS, max(cores, 1)


def service_cpu_seconds(comm: str) -> dict[int, float]:
    """CPU seconds of every process whose command name starts with `comm`, by pid."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().startswith(comm):
                continue
        except OSError:
            continue
        seconds = process_cpu_seconds(int(entry.name))
        if seconds is not None:
            found[int(entry.name)] = seconds
    return found


@dataclass
class CpuSnapshot:
    wall: float
    processes: dict[str, float] = field(default_factory=dict)
    services: dict[str, dict[int, float]] = field(default_factory=dict)
    machine_busy: float = 0.0
    machine_total: float = 0.0
    cores: int = 1


def snapshot(wall: float, pids: dict[str, list[int]]) -> CpuSnapshot:
    """CPU seconds so far of each named group of our processes, the services and the machine."""
    snap = CpuSnapshot(wall=wall)
    for name, group in pids.items():
        snap.processes[name] = sum(process_cpu_seconds(pid) or 0.0 for pid in group)
    for name, comm in SERVICES.items():
        snap.services[name] = service_cpu_seconds(comm)
    snap.machine_busy, snap.machine_total, snap.cores = machine_cpu_seconds()
    return snap


def usage(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Percent of one core used by each group between two snapshots (200 = two full cores)."""
    wall = after.wall - before.wall
    if wall <= 0:
        return {}
    result = {
        name: round(100 * (after.processes[name] - before.processes[name]) / wall, 1)
        for name in after.processes
        if name in before.processes
    }
    for name, processes in after.services.items():
        # Processes that ended during the window are not counted (their time is gone):
        # a lower bound. Processes that started during it count in full.
        earlier = before.services.get(name, {})
        spent = sum(seconds - earlier.get(pid, 0.0) for pid, seconds in processes.items())
        result[name] = round(100 * spent / wall, 1)
    total = after.machine_total - before.machine_total
    if total > 0:
        busy_share = (after.machine_busy - before.machine_busy) / total
        result["machine_busy"] = round(100 * after.cores * busy_share, 1)
        ours = sum(v for k, v in result.items() if k != "machine_busy")
        result["everything_else"] = round(max(0.0, result["machine_busy"] - ours), 1)
    return result


def rss_bytes(pid: int) -> int | None:
    """Resident set size of one process (VmRSS), or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None
