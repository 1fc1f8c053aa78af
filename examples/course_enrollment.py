"""A small course-enrollment service on factstr.

Students enroll in courses with at most `SEATS` seats each. The rule is enforced with
`append_if`: an enrollment is appended only if nobody changed the course's enrollments since
we looked, so concurrent workers can never overbook. A durable stream keeps a seat count
projection up to date, and resumes from its cursor after a restart.

Run it with `scripts/example.sh` (or `python examples/course_enrollment.py [STORE_URL]`). By
default it uses a new SQLite file in a temporary folder, the embedded default store.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import factstr
from factstr import EventFilter, EventQuery, NewEvent

SEATS = 3


def course_context(course: str) -> EventQuery:
    """Every fact that decides whether a course has a free seat."""
    return EventQuery([EventFilter(["StudentEnrolled", "StudentWithdrew"], [{"course": course}])])


def enroll(store: factstr.EventStore, course: str, student: str) -> bool:
    """Enrolls `student` if a seat is free; retries when another writer got there first."""
    context = course_context(course)
    while True:
        result = store.query(context)
        enrolled: set[str] = set()
        for record in result.event_records:
            if record.event_type == "StudentEnrolled":
                enrolled.add(record.payload["student"])
            else:
                enrolled.discard(record.payload["student"])
        if student in enrolled or len(enrolled) >= SEATS:
            return False
        try:
            store.append_if(
                [NewEvent("StudentEnrolled", {"course": course, "student": student})],
                context,
                result.current_context_version,
            )
            return True
        except factstr.ConditionalAppendConflict:
            continue  # someone else changed this course: decide again on fresh facts


def main(url: str) -> None:
    with factstr.connect(url) as store:
        store.append(
            [
                NewEvent("CourseOpened", {"course": "rust-101", "seats": SEATS}),
                NewEvent("CourseOpened", {"course": "python-201", "seats": SEATS}),
            ]
        )

        seats_taken: dict[str, int] = {}
        projection_updated = threading.Event()

        def project(batch: list[factstr.EventRecord]) -> None:
            for record in batch:
                course = record.payload["course"]
                change = 1 if record.event_type == "StudentEnrolled" else -1
                seats_taken[course] = seats_taken.get(course, 0) + change
            projection_updated.set()

        seat_query = EventQuery.for_event_types(["StudentEnrolled", "StudentWithdrew"])
        projection = store.stream_to_durable("seat-count", seat_query, project)

        # Eight students race for three seats in each course from four threads.
        results: dict[tuple[str, str], bool] = {}

        def worker(students: list[str]) -> None:
            for student in students:
                for course in ("rust-101", "python-201"):
                    results[(course, student)] = enroll(store, course, student)

        students = [f"student-{i}" for i in range(8)]
        threads = [threading.Thread(target=worker, args=(students[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        for course in ("rust-101", "python-201"):
            winners = sorted(s for (c, s), ok in results.items() if c == course and ok)
            print(f"{course}: {len(winners)} of {SEATS} seats taken by {', '.join(winners)}")
            assert len(winners) == SEATS, "the invariant must hold under concurrency"

        # The projection catches up on its own thread; wait until its cursor reaches the log's end.
        head = store.query(limit=0).current_context_version
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            cursors = {
                info.name: info.last_processed_sequence_number for info in store.durable_streams()
            }
            if cursors.get("seat-count") == head:
                break
            projection_updated.wait(0.05)
            projection_updated.clear()
        projection.unsubscribe()
        print(f"projection (durable stream 'seat-count'): {seats_taken}")
        for info in store.durable_streams():
            print(f"  cursor of {info.name!r}: {info.last_processed_sequence_number}")

        everything = store.query()
        print(
            f"log: {len(everything.event_records)} facts, "
            f"last sequence number {everything.current_context_version}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory(prefix="factstr-example-") as folder:
            database = Path(folder) / "courses.db"
            print(f"store: {database}")
            main(f"sqlite:///{database}")
