"""The admission gate in front of each pool: arrival order, one deadline, a bounded queue.

Counted in places, waiters and sheds, with a controlled order of events; no wall time is
asserted beyond "before its deadline" and "after it".
"""

import asyncio

import pytest

from api.pipeline.admission import Gate, ServerBusy


async def hold(
    gate: Gate, patience: float | None, order: list[str], name: str, release: asyncio.Event
) -> None:
    async with gate.slot(patience):
        order.append(name)
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_places_go_to_waiters_in_arrival_order() -> None:
    gate = Gate("test", size=1, queue_limit=10)
    order: list[str] = []
    releases = {name: asyncio.Event() for name in "abcd"}
    tasks = []
    for name in "abcd":
        tasks.append(asyncio.create_task(hold(gate, None, order, name, releases[name])))
        await settle()
    assert (order, gate.inside, gate.waiting) == (["a"], 1, 3)
    for name in "abcd":
        releases[name].set()
        await settle()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c", "d"]
    assert (gate.inside, gate.waiting, gate.saturated) == (0, 0, False)


async def test_a_waiter_past_its_deadline_is_shed_and_the_others_still_wait() -> None:
    gate = Gate("test", size=1, queue_limit=10)
    order: list[str] = []
    holder = asyncio.Event()
    first = asyncio.create_task(hold(gate, None, order, "holder", holder))
    await settle()
    hasty = asyncio.create_task(hold(gate, 0.05, order, "hasty", asyncio.Event()))
    patient_release = asyncio.Event()
    patient = asyncio.create_task(hold(gate, 30, order, "patient", patient_release))
    with pytest.raises(ServerBusy):
        await hasty
    assert (gate.shed, gate.waiting) == (1, 1)
    holder.set()
    patient_release.set()
    await asyncio.gather(first, patient)
    assert order == ["holder", "patient"]
    assert (gate.inside, gate.waiting) == (0, 0)


async def test_a_full_queue_sheds_at_once() -> None:
    gate = Gate("test", size=1, queue_limit=2)
    release = asyncio.Event()
    tasks = [asyncio.create_task(hold(gate, None, [], str(n), release)) for n in range(3)]
    await settle()
    assert (gate.inside, gate.waiting) == (1, 2)
    with pytest.raises(ServerBusy, match="queue full"):
        await gate.enter(None)
    assert gate.shed == 1
    release.set()
    await asyncio.gather(*tasks)


async def test_a_waiter_cancelled_after_it_was_handed_a_place_passes_it_on() -> None:
    gate = Gate("test", size=1, queue_limit=10)
    order: list[str] = []
    await gate.enter(None)  # this test holds the one place
    doomed = asyncio.create_task(hold(gate, None, order, "doomed", asyncio.Event()))
    after = asyncio.Event()
    last = asyncio.create_task(hold(gate, None, order, "last", after))
    await settle()
    assert gate.waiting == 2
    gate.leave()  # handed to `doomed`, which is cancelled before it runs again
    doomed.cancel()
    after.set()
    async with asyncio.timeout(5):  # without the place passed on, `last` would wait for ever
        await last
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert order == ["last"]
    assert (gate.inside, gate.waiting, gate.saturated) == (0, 0, False)
