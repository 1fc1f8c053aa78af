"""S3 on PostgreSQL alone, factstr against the psycopg floor (bench/subjects/floor_postgres.py:
a B-tree expression index on the context key, one SELECT per decision, then BEGIN + advisory lock,
one guarded INSERT, COMMIT), on the durable cluster the benchmarks use, in alternating turns;
and, with --round-trips, how many round trips each factstr call takes (counted by a proxy
between the store and the server: one round trip per turn of the client speaking).

    python bench/pg_s3.py --facts 10000 --facts 1000000 --turns 6 --seconds 3
    python bench/pg_s3.py --round-trips

The figure is the ratio factstr / floor of decisions per second (read the ~100-fact context of
one course into Python objects, then append_if on its version), median over the turn pairs."""

from __future__ import annotations

import argparse
import statistics
import time

import factstr
from factstr import EventFilter, EventQuery, NewEvent

from bench import fixtures
from bench.servers import close_env, env
from bench.subject import ENROLLED, Session, Subject
from bench.subjects import factstr_stores, floor_postgres
from tests.round_trips import counted


def decisions(
    session: Session, courses: int, seconds: float, start: int, phases: list[tuple[float, float]]
) -> float:
    """Decisions per second over `seconds` (each on another course); adds the seconds of each
    decision's read and append to `phases`."""
    done = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds or done < 3:
        counter = start + done
        course = f"c{(counter * 7919) % courses}"
        t0 = time.perf_counter()
        version = session.decide(course)
        t1 = time.perf_counter()
        if not session.append_if(
            course, {"course": course, "student": f"x{counter}", "amount": 1}, version
        ):
            raise AssertionError("a conflict with no other writer")
        phases.append((t1 - t0, time.perf_counter() - t1))
        done += 1
    return done / (time.perf_counter() - began)


def compare(facts: int, turns: int, seconds: float) -> None:
    subjects: list[Subject] = [factstr_stores.postgres(), floor_postgres.subject()]
    courses = max(1, facts // 100)
    locations = {s.name: fixtures.filled(s, facts) for s in subjects}
    rates: dict[str, list[float]] = {s.name: [] for s in subjects}
    phases: dict[str, list[tuple[float, float]]] = {s.name: [] for s in subjects}
    counter = 0
    for _ in range(turns):
        for subject in subjects:  # A, B, A, B
            with subject.session(locations[subject.name]) as session:
                decisions(session, courses, 0.3, counter, [])  # warm the connection
                rate = decisions(session, courses, seconds, counter, phases[subject.name])
                rates[subject.name].append(rate)
            counter += 100_000
    for subject in subjects:
        reads = [r for r, _ in phases[subject.name]]
        writes = [w for _, w in phases[subject.name]]
        print(
            f"  {subject.name}: read p50 {statistics.median(reads) * 1000:.2f} ms, "
            f"append_if p50 {statistics.median(writes) * 1000:.2f} ms ({len(reads)} decisions)"
        )
    ours, floor = (rates[s.name] for s in subjects)
    ratios = [a / b for a, b in zip(ours, floor, strict=True)]
    print(
        f"S3 {facts:,} facts ({env().pg_durability()}): factstr {statistics.median(ours):.0f} "
        f"ops/s, floor {statistics.median(floor):.0f} ops/s, ratio median "
        f"{statistics.median(ratios):.2f} (per turn: {', '.join(f'{r:.2f}' for r in ratios)})"
    )


def round_trips() -> None:
    url = env().pg_create()
    with counted(url) as (proxy, through), factstr.PostgresStore(through, pool_size=1) as store:
        context = EventQuery([EventFilter([ENROLLED], [{"course": "c1"}])])
        for i in range(200):
            store.append([NewEvent(ENROLLED, {"course": f"c{i % 3}", "n": i})])
        # Every statement prepared once on the connection before counting.
        version = store.query(context).current_context_version
        store.append_if([NewEvent(ENROLLED, {"course": "c1"})], context, version)
        head = store.query(EventQuery.all(), limit=1).head_sequence_number
        store.append_unless([NewEvent(ENROLLED, {"course": "c1"})], context, head)
        version = store.query(context).current_context_version
        print(f"query (context of a course): {proxy.count(lambda: store.query(context))[0]}")
        print(
            "append_if: "
            f"{proxy.count(lambda: store.append_if([NewEvent(ENROLLED, {'course': 'c1'})], context, version))[0]}"
        )
        head = store.query(EventQuery.all(), limit=1).head_sequence_number
        print(
            "append_unless (payload context, after the head): "
            f"{proxy.count(lambda: store.append_unless([NewEvent(ENROLLED, {'course': 'c1'})], context, head))[0]}"
        )
        print(
            f"append: {proxy.count(lambda: store.append([NewEvent(ENROLLED, {'course': 'c2'})]))[0]}"
        )
    env().pg_drop(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, action="append")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--round-trips", action="store_true")
    args = parser.parse_args()
    try:
        if args.round_trips:
            round_trips()
        for facts in args.facts or ([] if args.round_trips else [10_000]):
            compare(facts, args.turns, args.seconds)
    finally:
        fixtures.drop_all()
        close_env()


if __name__ == "__main__":
    main()
