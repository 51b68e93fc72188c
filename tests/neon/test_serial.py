"""One mutation at a time per Neon project: the per-project lock and what it remembers."""

from __future__ import annotations

import asyncio

from tenantdb.neon.models import Operation
from tenantdb.neon.serial import ProjectSerializer


def _operation(op_id: str, status: str = "running") -> Operation:
    return Operation(id=op_id, project_id="p-1", action="apply_config", status=status)


async def test_two_tasks_on_one_project_take_turns() -> None:
    serial = ProjectSerializer()
    order: list[str] = []

    async def mutate(who: str) -> None:
        async with serial.hold("p-1"):
            order.append(f"{who} in")
            await asyncio.sleep(0.01)
            order.append(f"{who} out")

    await asyncio.gather(mutate("a"), mutate("b"))
    assert order == ["a in", "a out", "b in", "b out"]


async def test_different_projects_do_not_wait_for_each_other() -> None:
    serial = ProjectSerializer()
    inside = asyncio.Event()

    async def hold_p1() -> None:
        async with serial.hold("p-1"):
            await inside.wait()

    holder = asyncio.create_task(hold_p1())
    await asyncio.sleep(0)
    async with asyncio.timeout(1):
        async with serial.hold("p-2"):
            inside.set()
    await holder


async def test_a_task_holding_the_project_can_mutate_it_again() -> None:
    serial = ProjectSerializer()
    async with asyncio.timeout(1):
        async with serial.hold("p-1"), serial.hold("p-1"):
            pass


async def test_nothing_is_kept_for_projects_no_longer_in_use() -> None:
    serial = ProjectSerializer()

    async def use(project_id: str) -> None:
        async with serial.hold(project_id):
            await asyncio.sleep(0)
            serial.started(project_id, [_operation(f"op-{project_id}")])
        serial.finished(project_id, [_operation(f"op-{project_id}", "finished")])

    await asyncio.gather(*(use(f"p-{i % 50}") for i in range(500)))
    assert len(serial) == 0


async def test_the_next_mutation_knows_what_the_last_one_left_running() -> None:
    serial = ProjectSerializer()
    serial.started("p-1", [_operation("op-1", "finished"), _operation("op-2")])
    assert [op.id for op in serial.unfinished("p-1")] == ["op-2"]
    serial.finished("p-1", [_operation("op-2", "finished")])
    assert serial.unfinished("p-1") == []
