"""Exactly-once checks over what every stream received: lost, duplicated, when complete.

A stream starts after the id of its opening frame (`start`) and, once the run is
over, must have received every seq of its tenant in (start, target] exactly once.
"""

from array import array
from dataclasses import asdict, dataclass

from bench.sseclient import ClientResult


@dataclass(frozen=True)
class StreamView:
    tenant: int
    start: int  # the opening frame's id; -1 if none arrived (counted as 0)
    seqs: array
    times: array


def stream_views(results: list[ClientResult]) -> list[StreamView]:
    """Every stream that opened, across the client processes."""
    views = []
    for result in results:
        starts = result.start_seqs or [-1] * len(result.streams)
        for spec, opened, start, seqs, times in zip(
            result.streams, result.opened, starts, result.seqs, result.times, strict=True
        ):
            if opened:
                views.append(StreamView(spec.tenant, start, seqs, times))
    return views


@dataclass
class Exactness:
    streams: int = 0
    expected: int = 0  # deliveries: sum over streams of target - start
    received: int = 0  # metrics frames received, duplicates included
    lost: int = 0  # expected seqs never received
    duplicated: int = 0  # receipts of a seq beyond its first
    unexpected: int = 0  # seqs outside (start, target]
    streams_with_loss: int = 0
    streams_with_duplicates: int = 0
    max_lost_per_stream: int = 0
    max_duplicated_per_stream: int = 0
    streams_without_opening_id: int = 0
    streams_complete: int = 0
    # When the last stream had received its last missing seq (time.time()); None if any lost.
    complete_at: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def check(views: list[StreamView], targets: dict[int, int]) -> Exactness:
    """Compare each stream's receipts with (start, targets[tenant]]."""
    found = Exactness(streams=len(views))
    latest_completion = 0.0
    for view in views:
        start = max(view.start, 0)
        target = targets.get(view.tenant, 0)
        if view.start < 0:
            found.streams_without_opening_id += 1
        first: dict[int, float] = {}
        duplicated = unexpected = 0
        for seq, moment in zip(view.seqs, view.times, strict=True):
            if not start < seq <= target:
                unexpected += 1
            elif seq in first:
                duplicated += 1
            else:
                first[seq] = moment
        expected = max(0, target - start)
        lost = expected - len(first)
        found.expected += expected
        found.received += len(view.seqs)
        found.lost += lost
        found.duplicated += duplicated
        found.unexpected += unexpected
        found.streams_with_loss += lost > 0
        found.streams_with_duplicates += duplicated > 0
        found.max_lost_per_stream = max(found.max_lost_per_stream, lost)
        found.max_duplicated_per_stream = max(found.max_duplicated_per_stream, duplicated)
        if lost == 0:
            found.streams_complete += 1
            if first:
                latest_completion = max(latest_completion, max(first.values()))
    if found.streams_complete == found.streams:
        found.complete_at = latest_completion or None
    return found


@dataclass
class Span:
    """Deliveries of some batches: how many, of how many distinct batches, first and last."""

    deliveries: int = 0
    batches: int = 0
    earlier: int = 0  # deliveries of those batches received before the span's start
    first: float | None = None
    last: float | None = None

    @property
    def seconds(self) -> float:
        return (self.last - self.first) if self.first is not None and self.last else 0.0


def span(views: list[StreamView], ranges: dict[int, tuple[int, int]], after: float = 0.0) -> Span:
    """Deliveries, at or after `after`, of the seqs in (lo, hi] of each tenant's range."""
    found = Span()
    distinct: set[tuple[int, int]] = set()
    for view in views:
        lo, hi = ranges.get(view.tenant, (0, 0))
        for seq, moment in zip(view.seqs, view.times, strict=True):
            if lo < seq <= hi:
                if moment < after:
                    found.earlier += 1
                    continue
                found.deliveries += 1
                distinct.add((view.tenant, seq))
                if found.first is None or moment < found.first:
                    found.first = moment
                if found.last is None or moment > found.last:
                    found.last = moment
    found.batches = len(distinct)
    return found


def rate_between(views: list[StreamView], start: float, end: float) -> float:
    """Frames received per second with a receipt time in [start, end)."""
    if end <= start:
        return 0.0
    count = 0
    for view in views:
        count += sum(1 for moment in view.times if start <= moment < end)
    return count / (end - start)
