"""An eventsourcing workload on factstr.eventsourcing against eventsourcing's own recorders.

    .venv/bin/python bench/eventsourcing_workload.py [--aggregates 400] [--rounds 2] [--dcb-ops 400]

Application workload (the same `Application` subclass, only `PERSISTENCE_MODULE` and its store
settings change): create aggregates (one event each), save new events (two per aggregate,
one save each), read every aggregate back (`repository.get`), follow the notification log
(`select_notifications` pages of 100, each turned back into a domain event). Subjects per store:
factstr.eventsourcing vs eventsourcing.popo (Memory), eventsourcing.sqlite (SQLite file) and
eventsourcing.postgres (PostgreSQL, the test suite's throwaway cluster).

DCB workload: factstr's DCB recorder vs eventsourcing's `PostgresDCBRecorderTT` (and
`InMemoryDCBRecorder`): a decision (read a context by tag, then append with the condition
`fail_if_events_match` = that query, `after` = the read's head) and a context read.

Like bench/run.py: every subject runs in the same process and run, on a fresh store per round,
subjects alternated (A, B, A, B), best round kept; the table shows each phase's rate and
`factstr x` = factstr's rate / the subject's. Run it under `nice -n 10` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eventsourcing.application import Application  # noqa: E402
from eventsourcing.domain import Aggregate, event  # noqa: E402

from bench.servers import close_env, env  # noqa: E402


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @event("TrickAdded")
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)


class DogSchool(Application[Any]):
    pass


PHASES = ("create", "save", "read", "follow")


def app_workload(settings: dict[str, str], aggregates: int) -> dict[str, float]:
    """Rates (operations or events per second) of each phase on a fresh store."""
    app = DogSchool(env=settings)
    rates: dict[str, float] = {}
    try:
        dogs = [Dog(f"dog-{i}") for i in range(aggregates)]
        start = time.perf_counter()
        for dog in dogs:
            app.save(dog)
        rates["create"] = aggregates / (time.perf_counter() - start)

        start = time.perf_counter()
        for dog in dogs:
            dog.add_trick("sit")
            dog.add_trick("roll over")
            app.save(dog)
        rates["save"] = aggregates / (time.perf_counter() - start)

        start = time.perf_counter()
        for dog in dogs:
            assert app.repository.get(dog.id).tricks == ["sit", "roll over"]
        rates["read"] = aggregates / (time.perf_counter() - start)

        start = time.perf_counter()
        seen, last = 0, 0
        while True:
            page = app.recorder.select_notifications(last + 1, 100)
            for notification in page:
                app.mapper.to_domain_event(notification)
            seen += len(page)
            if len(page) < 100:
                break
            last = page[-1].id
        assert seen == 3 * aggregates, seen
        rates["follow"] = seen / (time.perf_counter() - start)
    finally:
        app.close()
    return rates


def pg_settings(url: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info["dbname"]),
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", 5432)),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
    }


def factstr_settings(url: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "factstr.eventsourcing", "FACTSTR_URL": url}


# A subject: (group, name, make) where make() returns (settings, cleanup).
Make = Callable[[], tuple[dict[str, str], Callable[[], None]]]


def app_subjects() -> list[tuple[str, str, Make]]:
    def nothing() -> None:
        pass

    def sqlite_path() -> str:
        return str(env().new_path("es"))

    def pg() -> tuple[str, Callable[[], None]]:
        url = env().pg_create()
        return url, lambda: env().pg_drop(url)

    def factstr_pg() -> tuple[dict[str, str], Callable[[], None]]:
        url, drop = pg()
        return factstr_settings(url), drop

    def theirs_pg() -> tuple[dict[str, str], Callable[[], None]]:
        url, drop = pg()
        return pg_settings(url), drop

    return [
        (
            "memory",
            "factstr.eventsourcing memory://",
            lambda: (factstr_settings("memory://"), nothing),
        ),
        (
            "memory",
            "eventsourcing.popo",
            lambda: ({"PERSISTENCE_MODULE": "eventsourcing.popo"}, nothing),
        ),
        (
            "sqlite",
            "factstr.eventsourcing sqlite",
            lambda: (factstr_settings(f"sqlite:///{sqlite_path()}"), nothing),
        ),
        (
            "sqlite",
            "eventsourcing.sqlite",
            lambda: (
                {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": sqlite_path()},
                nothing,
            ),
        ),
        ("postgres", "factstr.eventsourcing postgresql", factstr_pg),
        ("postgres", "eventsourcing.postgres", theirs_pg),
    ]


# -- DCB ---------------------------------------------------------------------------------------


def dcb_workload(recorder: Any, ops: int, courses: int = 20) -> dict[str, float]:
    from eventsourcing.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBQueryItem

    def query(course: int) -> DCBQuery:
        return DCBQuery(items=[DCBQueryItem(types=["Enrolled"], tags=[f"course:{course}"])])

    rates: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(ops):
        course = i % courses
        q = query(course)
        response = recorder.read(q)
        enrolled = [e for e in response]
        data = json.dumps(
            {"student": i, "course": course, "seats": len(enrolled)}, separators=(",", ":")
        )
        recorder.append(
            [DCBEvent("Enrolled", data.encode(), tags=[f"course:{course}", f"student:{i}"])],
            DCBAppendCondition(fail_if_events_match=q, after=response.head),
        )
    rates["decide"] = ops / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(ops):
        assert len(list(recorder.read(query(i % courses)))) == ops // courses
    rates["read"] = ops / (time.perf_counter() - start)
    return rates


def dcb_subjects() -> list[tuple[str, str, Callable[[], tuple[Any, Callable[[], None]]]]]:
    import factstr
    from factstr.eventsourcing import FactstrDCBRecorder

    def factstr_dcb(url: str, drop: Callable[[], None]) -> tuple[Any, Callable[[], None]]:
        store = factstr.connect(url)

        def close() -> None:
            store.close()
            drop()

        return FactstrDCBRecorder(store), close

    def factstr_pg() -> tuple[Any, Callable[[], None]]:
        url = env().pg_create()
        return factstr_dcb(url, lambda: env().pg_drop(url))

    def theirs_pg() -> tuple[Any, Callable[[], None]]:
        from eventsourcing.dcb.postgres_tt import PostgresDCBRecorderTT
        from eventsourcing.postgres import PostgresDatastore

        url = env().pg_create()
        settings = pg_settings(url)
        datastore = PostgresDatastore(
            dbname=settings["POSTGRES_DBNAME"],
            host=settings["POSTGRES_HOST"],
            port=settings["POSTGRES_PORT"],
            user=settings["POSTGRES_USER"],
            password=settings["POSTGRES_PASSWORD"],
        )
        recorder = PostgresDCBRecorderTT(datastore)
        recorder.create_table()

        def close() -> None:
            datastore.close()
            env().pg_drop(url)

        return recorder, close

    def theirs_memory() -> tuple[Any, Callable[[], None]]:
        from eventsourcing.dcb.popo import InMemoryDCBRecorder

        return InMemoryDCBRecorder(), lambda: None

    return [
        ("memory", "factstr DCB memory://", lambda: factstr_dcb("memory://", lambda: None)),
        ("memory", "eventsourcing InMemoryDCBRecorder", theirs_memory),
        (
            "sqlite",
            "factstr DCB sqlite",
            lambda: factstr_dcb(f"sqlite:///{env().new_path('dcb')}", lambda: None),
        ),
        ("postgres", "factstr DCB postgresql", factstr_pg),
        ("postgres", "eventsourcing PostgresDCBRecorderTT", theirs_pg),
    ]


# -- running and reporting ---------------------------------------------------------------------


def best(results: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        name: {phase: max(r[phase] for r in rounds) for phase in rounds[0]}
        for name, rounds in results.items()
    }


def report(title: str, subjects: list[tuple[str, str]], rates: dict[str, dict[str, float]]) -> None:
    phases = list(next(iter(rates.values())))
    print(f"\n## {title}\n")
    print("| store | subject | " + " | ".join(f"{p} /s | factstr x" for p in phases) + " |")
    print("|---|---|" + "---:|---:|" * len(phases))
    for group, name in subjects:
        ours = next(n for g, n in subjects if g == group and n.startswith("factstr"))
        cells = []
        for phase in phases:
            ratio = rates[ours][phase] / rates[name][phase]
            cells.append(f"{rates[name][phase]:,.0f} | {ratio:.2f}")
        print(f"| {group} | {name} | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aggregates", type=int, default=400)
    parser.add_argument("--dcb-ops", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the best rates here")
    args = parser.parse_args()
    os.environ.pop("PERSISTENCE_MODULE", None)
    try:
        app_results: dict[str, list[dict[str, float]]] = {}
        subjects = app_subjects()
        for _ in range(args.rounds):
            for _group, name, make in subjects:  # alternated: A, B, A, B
                settings, cleanup = make()
                try:
                    app_results.setdefault(name, []).append(app_workload(settings, args.aggregates))
                finally:
                    cleanup()
        app_best = best(app_results)
        report(
            f"Application workload ({args.aggregates} aggregates, 3 events each; best of {args.rounds})",
            [(g, n) for g, n, _ in subjects],
            app_best,
        )

        dcb_results: dict[str, list[dict[str, float]]] = {}
        dsubjects = dcb_subjects()
        for _ in range(args.rounds):
            for _group, name, make_recorder in dsubjects:
                recorder, close = make_recorder()
                try:
                    dcb_results.setdefault(name, []).append(dcb_workload(recorder, args.dcb_ops))
                finally:
                    close()
        dcb_best = best(dcb_results)
        report(
            f"DCB recorder ({args.dcb_ops} decisions on 20 contexts, then {args.dcb_ops} context reads; best of {args.rounds})",
            [(g, n) for g, n, _ in dsubjects],
            dcb_best,
        )
        print(f"\nload average: {os.getloadavg()}; {env().pg_durability()}")
        if args.json:
            args.json.write_text(json.dumps({"application": app_best, "dcb": dcb_best}, indent=2))
    finally:
        close_env()
    return 0


if __name__ == "__main__":
    sys.exit(main())
