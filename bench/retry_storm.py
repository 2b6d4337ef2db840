"""Retry storms, simulated: how backoff strategies and the retry budget shape load on a dependency.

Every simulated client runs its calls through sfn-workers' own :class:`~sfn_workers.retries.RetryPolicy`
(``policy.acall``), with the policy's ``sleep``, ``clock`` and ``rng`` injected: ``sleep`` yields
to a discrete-event scheduler instead of waiting, so minutes of simulated time take milliseconds
and every run is reproducible from its seed. Nothing here re-implements backoff, jitter,
classification or the budget.

Scenario 1, contention (the optimistic-concurrency model of "Exponential Backoff and Jitter",
AWS Architecture Blog, 2015): N clients each read a row's version and write it back; a write
succeeds only if the version is unchanged, otherwise the client backs off and tries again (read,
then write). Network delay ~ |N(10 ms, 2 ms)| each way; the blog's base 5 ms and cap 2 s; means
over 100 seeds of the writes the row receives and the time until the last client has written.

Scenario 2, outage: a fleet of worker processes under steady Poisson load calls a dependency that
is hard down (HTTP 503) for 60 s. Calls per second reaching it, with no retries, with retries
(5 attempts, full jitter) and no budget, and with the same retries drawing from each process's
:class:`~sfn_workers.retries.RetryBudget`.

Run: ``make bench-retry`` or ``.venv/bin/python bench/retry_storm.py [--quick] [--write]``
(``--write`` replaces the "## Retries" section of bench/README.md with the results).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from readme_section import write_section  # bench/ is on sys.path when a bench runs

from sfn_workers.errors import RetryBudgetExhausted
from sfn_workers.retries import RetryBudget, RetryPolicy, Strategy, retry

# --------------------------------------------------------------------------------------------
# A tiny discrete-event scheduler: coroutines await ``sim.sleep(seconds)``; nothing else awaits.
# --------------------------------------------------------------------------------------------


class _Wait:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __await__(self) -> Generator[_Wait, None, None]:
        yield self


class Simulation:
    """Simulated time: ``clock()`` and ``sleep()`` are what the retry policies are given."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Coroutine[Any, Any, None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> _Wait:
        return _Wait(seconds)

    def spawn(self, coro: Coroutine[Any, Any, None], at: float | None = None) -> None:
        heapq.heappush(self._queue, (self.now if at is None else at, next(self._seq), coro))

    def run(self, until: float = math.inf) -> float:
        """Run every coroutine to its end (or until ``until``); returns the time of the last event."""
        queue = self._queue
        while queue:
            at, _, coro = heapq.heappop(queue)
            if at > until:
                coro.close()
                continue
            self.now = at
            try:
                wait = coro.send(None)
            except StopIteration:
                continue
            heapq.heappush(queue, (at + wait.seconds, next(self._seq), coro))
        return self.now


# --------------------------------------------------------------------------------------------
# Scenario 1: optimistic-concurrency contention
# --------------------------------------------------------------------------------------------


class Conflict(Exception):
    """The row changed between our read and our write."""


def _no_backoff(attempt: int, previous: float, rng: random.Random) -> float:
    """Retry at once (the blog's "no backoff" line): a custom strategy callable."""
    return 0.0


# The blog's simulator sleeps min(cap, base·2^n) after the n-th failure, n counted from 1, so its
# first retry already waits up to 2·base; sfn-workers (like the AWS SDKs) waits up to base first.
# Its "base 5 ms" is therefore base=10 ms here for the exponential family, while decorrelated
# jitter uses base itself (lower bound and first "previous") in both.
BLOG_BASE = 0.005
ALGORITHMS: dict[str, tuple[str | Strategy, float]] = {
    "none": (_no_backoff, 0.0),
    "exponential": ("none", 2 * BLOG_BASE),  # the library's name for exponential backoff without jitter
    "equal": ("equal", 2 * BLOG_BASE),
    "full": ("full", 2 * BLOG_BASE),
    "decorrelated": ("decorrelated", BLOG_BASE),
}
LABELS = {
    "none": "no backoff",
    "exponential": "exponential, no jitter",
    "equal": "equal jitter",
    "full": "full jitter",
    "decorrelated": "decorrelated jitter",
}


@dataclass
class Row:
    version: int = 0
    writes: int = 0


def contention_run(clients: int, algorithm: str, seed: int, cap: float = 2.0) -> tuple[int, float]:
    """One run of the OCC model: (writes the row received, seconds until every client wrote)."""
    jitter, base = ALGORITHMS[algorithm]
    sim = Simulation()
    rng = random.Random(seed)
    row = Row()
    normal = rng.normalvariate

    def net() -> float:
        return abs(normal(0.010, 0.002))

    policy = retry(
        on=Conflict,
        attempts=1_000_000,  # the model's clients keep trying until they win
        base=base,
        cap=cap,
        jitter=jitter,
        budget=None,
        sleep=sim.sleep,
        clock=sim.clock,
        rng=rng,
        observer=None,
    )

    async def read_then_write() -> None:
        await sim.sleep(net())  # read request travels
        version = row.version
        await sim.sleep(net())  # read response travels
        await sim.sleep(net())  # conditional write travels
        row.writes += 1
        won = row.version == version
        if won:
            row.version += 1
        await sim.sleep(net())  # its answer travels back
        if not won:
            raise Conflict

    for _ in range(clients):
        sim.spawn(policy.acall(read_then_write))
    finished = sim.run()
    assert row.version == clients
    return row.writes, finished


@dataclass
class ContentionResult:
    clients: int
    algorithm: str
    writes: float
    seconds: float


def contention(sizes: list[int], seeds: int) -> list[ContentionResult]:
    results = []
    for clients in sizes:
        for algorithm in ALGORITHMS:
            runs = [contention_run(clients, algorithm, seed) for seed in range(seeds)]
            results.append(
                ContentionResult(
                    clients,
                    algorithm,
                    statistics.fmean(w for w, _ in runs),
                    statistics.fmean(s for _, s in runs),
                )
            )
    return results


# --------------------------------------------------------------------------------------------
# Scenario 2: a dependency hard down for 60 s under steady load
# --------------------------------------------------------------------------------------------


def _unavailable() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ServiceUnavailable", "Message": "dependency is down"},
            "ResponseMetadata": {"HTTPStatusCode": 503, "HTTPHeaders": {}},
        },
        "GetItem",
    )


@dataclass
class OutageResult:
    mode: str
    per_second: list[int]
    outcomes: dict[str, int] = field(default_factory=dict)


def outage_run(
    mode: str,
    seed: int,
    *,
    processes: int = 10,
    rate: float = 10.0,
    down_from: float = 10.0,
    down_for: float = 60.0,
    horizon: float = 100.0,
) -> OutageResult:
    """Calls per simulated second reaching the dependency; ``mode`` is none | retries | budget."""
    sim = Simulation()
    # Separate streams: every mode sees the same arrivals, so the modes differ only by retries.
    arrivals, network, jitter = (random.Random(f"{seed}:{name}") for name in ("arrivals", "network", "jitter"))
    per_second = [0] * int(horizon + 1)
    outcomes = {"ok": 0, "failed": 0, "budget_refused": 0}
    down_until = down_from + down_for

    async def dependency() -> None:
        await sim.sleep(abs(network.normalvariate(0.010, 0.002)))
        per_second[int(sim.now)] += 1
        failed = down_from <= sim.now < down_until
        await sim.sleep(abs(network.normalvariate(0.010, 0.002)))
        if failed:
            raise _unavailable()

    def policy_for_process() -> RetryPolicy:
        return retry(
            attempts=1 if mode == "none" else 5,
            base=0.1,
            cap=5.0,
            jitter="full",
            budget=RetryBudget() if mode == "budget" else None,
            sleep=sim.sleep,
            clock=sim.clock,
            rng=jitter,
            observer=None,
        )

    async def request(policy: RetryPolicy) -> None:
        try:
            await policy.acall(dependency)
            outcomes["ok"] += 1
        except RetryBudgetExhausted:
            outcomes["budget_refused"] += 1
        except ClientError:
            outcomes["failed"] += 1

    async def load(policy: RetryPolicy) -> None:
        while True:
            await sim.sleep(arrivals.expovariate(rate))
            if sim.now >= horizon:
                return
            sim.spawn(request(policy))

    for _ in range(processes):
        sim.spawn(load(policy_for_process()))
    sim.run(until=horizon)
    return OutageResult(mode, per_second[: int(horizon)], outcomes)


@dataclass
class OutageSummary:
    mode: str
    before: float
    first_5s: float
    drained: float
    after: float
    peak: int
    outcomes: dict[str, int]
    settled: float | None
    """Seconds into the outage after which every 5-second mean stays within 1.1x the no-retry rate."""


def _settled(per_second: list[float], baseline: float | None, start: int = 10, end: int = 70) -> float | None:
    if baseline is None:
        return 0.0
    # 5-second means: one Poisson second alone strays past 1.1x by chance.
    smooth = [statistics.fmean(per_second[s : s + 5]) for s in range(start, end - 4)]
    for index in range(len(smooth)):
        if all(rate <= 1.1 * baseline for rate in smooth[index:]):
            return float(index)
    return None


def outage(seeds: int) -> list[OutageSummary]:
    summaries = []
    for mode in ("none", "retries", "budget"):
        runs = [outage_run(mode, seed) for seed in range(seeds)]
        per_second = [statistics.fmean(run.per_second[s] for run in runs) for s in range(len(runs[0].per_second))]
        outcomes = {key: sum(run.outcomes[key] for run in runs) // seeds for key in runs[0].outcomes}

        def window(start: int, end: int, series: list[float] = per_second) -> float:
            return statistics.fmean(series[start:end])

        summaries.append(
            OutageSummary(
                mode,
                settled=_settled(per_second, summaries[0].drained if summaries else None),
                before=window(0, 10),
                first_5s=window(10, 15),
                drained=window(20, 70),
                after=window(75, 100),
                peak=max(max(run.per_second) for run in runs),
                outcomes=outcomes,
            )
        )
    return summaries


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def report(contended: list[ContentionResult], outages: list[OutageSummary], seeds: int, elapsed: float) -> str:
    sizes = sorted({r.clients for r in contended})
    by = {(r.clients, r.algorithm): r for r in contended}
    lines = [
        "## Retries",
        "",
        f"`make bench-retry` (`.venv/bin/python bench/retry_storm.py --write`); {elapsed:.0f} s on one core, "
        f"{seeds} seeds per cell. Simulated time: every client's calls run through `RetryPolicy.acall` with "
        "injected `sleep`/`clock`/`rng` driven by a discrete-event scheduler.",
        "",
        "### Contention (OCC model of *Exponential Backoff and Jitter*, AWS Architecture Blog 2015)",
        "",
        "N clients read a version and write it back conditionally; network |N(10 ms, 2 ms)| each way; "
        "the blog's base 5 ms and cap 2 s (its simulator's first retry waits up to 2 x base, sfn-workers' "
        "up to base, so the exponential family runs with `base=0.010` and decorrelated with `base=0.005`: "
        "the same delays). Mean writes the row received / mean time until the last client wrote:",
        "",
        "| N | " + " | ".join(LABELS[a] for a in ALGORITHMS) + " |",
        "|---|" + "---|" * len(ALGORITHMS),
    ]
    for n in sizes:
        cells = [f"{by[n, a].writes:,.0f} / {by[n, a].seconds:.2f} s" for a in ALGORITHMS]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    ratio_rows = []
    for n in sizes:
        expo = by[n, "exponential"]
        cells = [f"{by[n, a].writes / expo.writes:.2f} / {by[n, a].seconds / expo.seconds:.2f}" for a in ALGORITHMS]
        ratio_rows.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios to exponential backoff without jitter (writes / time), same runs:",
        "",
        "| N | " + " | ".join(LABELS[a] for a in ALGORITHMS) + " |",
        "|---|" + "---|" * len(ALGORITHMS),
        *ratio_rows,
        "",
        "### Outage (dependency hard down, HTTP 503, from t=10 s to t=70 s)",
        "",
        "10 worker processes x Poisson 10 requests/s each; per request `retry(attempts=5, base=0.1, cap=5, "
        'jitter="full")`; `budget` gives each process its own `RetryBudget()` (500 tokens, 5 per retry, '
        "1 back per success). Calls per second reaching the dependency (mean over seeds):",
        "",
        "| mode | before (0-10 s) | first 5 s down | down, t=20-70 s | after (75-100 s) | peak second | "
        "x no-retry while down (t=20-70 s) | within 1.1x no-retry (5 s means) after | "
        "requests ok / failed / budget-refused |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    baseline = next(o for o in outages if o.mode == "none").drained
    names = {"none": "no retries", "retries": "retries, no budget", "budget": "retries + budget"}
    for o in outages:
        lines.append(
            f"| {names[o.mode]} | {o.before:.1f} | {o.first_5s:.1f} | {o.drained:.1f} | {o.after:.1f} | {o.peak} | "
            f"{o.drained / baseline:.2f}x | {'never' if o.settled is None else f'{o.settled:.0f} s'} | "
            f"{o.outcomes['ok']:,} / {o.outcomes['failed']:,} / "
            f"{o.outcomes['budget_refused']:,} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10 seeds, N = 10, 50, 100 (a few seconds)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 100; 10 with --quick)")
    parser.add_argument("--write", action="store_true", help="write the results into bench/README.md")
    args = parser.parse_args(argv)
    seeds = args.seeds or (10 if args.quick else 100)
    sizes = [10, 50, 100] if args.quick else [10, 50, 100, 200]
    started = time.process_time()
    contended = contention(sizes, seeds)
    outages = outage(max(3, seeds // 10))
    elapsed = time.process_time() - started
    text = report(contended, outages, seeds, elapsed)
    print(text)
    if args.write:
        write_section("Retries", text)
    failures = check(contended, outages)
    for failure in failures:
        print(f"CHECK FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def check(contended: list[ContentionResult], outages: list[OutageSummary]) -> list[str]:
    """The published shape and the budget target; a failure makes the run exit non-zero."""
    failures = []
    by = {(r.clients, r.algorithm): r for r in contended}
    if (100, "full") in by:
        full, expo = by[100, "full"], by[100, "exponential"]
        if not full.writes < expo.writes / 2:
            failures.append(f"full jitter at N=100 made {full.writes:.0f} writes, not < half of {expo.writes:.0f}")
    modes = {o.mode: o for o in outages}
    if not modes["budget"].drained <= 1.1 * modes["none"].drained:
        failures.append(
            f"with the budget {modes['budget'].drained:.1f} calls/s once drained, over 1.1x "
            f"the no-retry {modes['none'].drained:.1f}"
        )
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
