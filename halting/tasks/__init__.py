"""Tasks: one module each (parity, addition, maze) behind the `Task` interface, registered here.

Nothing outside this package branches on a task's name: code asks the task
(`get_task(config.task)`). Adding a task is one module plus its line in `TASKS`
(docs/extending.md).
"""

from __future__ import annotations

from halting.tasks.addition import Addition
from halting.tasks.base import INPUT_KINDS, Task
from halting.tasks.maze import Maze
from halting.tasks.parity import Parity

TASKS: dict[str, Task] = {t.name: t for t in (Maze(), Parity(), Addition())}


def get_task(name: str) -> Task:
    """The registered task of a config's `task` name."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}: expected {', '.join(TASKS)}") from None


__all__ = ["INPUT_KINDS", "TASKS", "Task", "get_task"]
