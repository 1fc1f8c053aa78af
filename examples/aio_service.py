"""A FastAPI-style service on ``factstr.aio``, runnable without FastAPI.

The shape is the one an ASGI app takes: a *lifespan* opens the store once and registers a
projection; each *endpoint* is a coroutine that reads, decides and appends with ``append_if``
(retrying on a conflict); a background task follows a durable subscription. With FastAPI the
same functions plug in as::

    app = FastAPI(lifespan=lifespan)

    @app.post("/courses/{course}/enrollments")
    async def enroll_endpoint(course: str, student: str) -> dict[str, object]:
        return await enroll(app.state.service, course, student)

Here ``main()`` plays the server: it runs the lifespan and fires 20 concurrent requests.
Nothing blocks the event loop: the store's work happens on factstr's engine threads.

    python examples/aio_service.py [sqlite:///service.db | memory:// | postgresql://...]
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from factstr import (
    ConditionalAppendConflict,
    EventFilter,
    EventQuery,
    EventRecord,
    NewEvent,
    aio,
)

SEATS = 5


@dataclass
class Service:
    store: aio.EventStore
    #: A read model kept by a coroutine handler on the loop: course -> enrolled students.
    enrolled: dict[str, list[str]] = field(default_factory=dict)


def course_context(course: str) -> EventQuery:
    return EventQuery([EventFilter(["CourseOpened", "StudentEnrolled"], [{"course": course}])])


@asynccontextmanager
async def lifespan(url: str) -> AsyncIterator[Service]:
    """Opens the store (off the loop, at its first await) and keeps the projection running."""
    async with aio.connect(url) as store:
        service = Service(store)

        async def project(batch: list[EventRecord]) -> None:
            # A coroutine handler: runs on this loop, one batch at a time.
            for record in batch:
                if record.event_type == "StudentEnrolled":
                    course, student = record.payload["course"], record.payload["student"]
                    service.enrolled.setdefault(course, []).append(student)

        with await store.stream_to(EventQuery.for_event_types(["StudentEnrolled"]), project):
            yield service


async def open_course(service: Service, course: str) -> dict[str, object]:
    """POST /courses/{course}"""
    result = await service.store.append([NewEvent("CourseOpened", {"course": course})])
    return {"course": course, "sequence_number": result.first_sequence_number}


async def enroll(service: Service, course: str, student: str) -> dict[str, object]:
    """POST /courses/{course}/enrollments: enroll unless the course is full, decided on the
    facts of this course only and appended only if none of them changed meanwhile."""
    context = course_context(course)
    while True:
        seen = await service.store.query(context)
        taken = sum(1 for r in seen if r.event_type == "StudentEnrolled")
        if not any(r.event_type == "CourseOpened" for r in seen):
            return {"status": 404, "detail": f"no course {course}"}
        if taken >= SEATS:
            return {"status": 409, "detail": f"{course} is full"}
        try:
            await service.store.append_if(
                [NewEvent("StudentEnrolled", {"course": course, "student": student})],
                context,
                seen.current_context_version,
            )
            return {"status": 201, "seat": taken + 1}
        except ConditionalAppendConflict:
            continue  # someone enrolled meanwhile: decide again on the new facts


async def audit(store: aio.EventStore, stop: asyncio.Event) -> int:
    """A background worker following a durable subscription (it resumes after a restart)."""
    seen = 0
    async with store.subscribe(durable="audit") as subscription:
        while not stop.is_set():
            batch = await subscription.next_batch(timeout=0.1)
            if batch is not None:
                seen += len(batch)
                subscription.ack()
    return seen


async def main(url: str) -> None:
    async with lifespan(url) as service:
        stop = asyncio.Event()
        auditor = asyncio.ensure_future(audit(service.store, stop))
        await open_course(service, "rust-101")
        students = [f"student-{n}" for n in range(20)]
        answers = await asyncio.gather(*(enroll(service, "rust-101", s) for s in students))
        admitted = [a for a in answers if a["status"] == 201]
        for _ in range(200):  # the projection catches up within moments
            if len(service.enrolled.get("rust-101", [])) == len(admitted):
                break
            await asyncio.sleep(0.01)
        stop.set()
        audited = await auditor
        print(f"{len(admitted)} of {len(students)} admitted ({SEATS} seats)")
        print(f"projection: {sorted(service.enrolled.get('rust-101', []))}")
        print(f"audit saw {audited} new facts")
        assert len(admitted) == SEATS
        assert len(service.enrolled["rust-101"]) == SEATS


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory://"))
