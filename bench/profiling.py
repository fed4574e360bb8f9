"""Sampling profiles of a running server with py-spy, summarised as its hottest functions."""

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SAMPLES_PER_SECOND = 250
# Functions listed per profile, by inclusive and by own share of the samples.
HOTTEST = 25
FINISH_TIMEOUT_SECONDS = 30.0


@dataclass
class Recording:
    popen: subprocess.Popen[bytes]
    output: Path


def record(pid: int, seconds: float, output: Path, enabled: bool = True) -> Recording | None:
    """Start py-spy on `pid` for `seconds` (raw collapsed stacks to `output`); None if off."""
    if not enabled:
        return None
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("bench: --profile needs py-spy (pip install -e '.[dev]')")
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    command += ["--rate", str(SAMPLES_PER_SECOND), "--format", "raw", "--output", str(output)]
    command += ["--nonblocking"]  # never pause the server being measured
    popen = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Recording(popen, output)


def hottest(recording: Recording) -> dict[str, list[tuple[str, float]]]:
    """Wait for the recording; each function's share (%) of the samples, top first."""
    recording.popen.wait(FINISH_TIMEOUT_SECONDS)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in recording.output.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)

    def top(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * n / total, 1)) for f, n in counter.most_common(HOTTEST)]

    return {"samples": [("all", float(total))], "own": top(own), "inclusive": top(inclusive)}
