"""``BudgetSync``: the budget registry with the loop that acts on it, as the handlers hold it.

What the operator knows about budgets (the budgets and databases the handlers register, the
costs, the decision on each user, what was written) is ``budget.registry``; what it does with
it (the consumption sync, enforcement, quotas, switching endpoints) is ``budget.loop``; a
budget's status is built and written in ``budget.status``. This module only puts them together:
the handlers register and ask through one object, and the loop's entry points keep their names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from tenantdb.reconcile.budget.loop import BudgetLoop
from tenantdb.reconcile.budget.ports import EventPoster
from tenantdb.reconcile.budget.registry import BudgetRegistry

__all__ = ["BudgetSync", "EventPoster"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _on_loop(method: Callable[Concatenate[BudgetLoop, _P], _R]) -> Callable[Concatenate[BudgetSync, _P], _R]:
    def call(self: BudgetSync, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return method(self.loop, *args, **kwargs)

    call.__doc__ = method.__doc__
    return call


@dataclasses.dataclass
class BudgetSync(BudgetRegistry):
    """The registry (the handlers keep it current, the loop reads and records in it), and
    ``loop``, what acts on it; the loop's entry points are called on this object too."""

    loop: BudgetLoop = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.loop = BudgetLoop(registry=self)

    first_sync_wait = _on_loop(BudgetLoop.first_sync_wait)
    run_forever = _on_loop(BudgetLoop.run_forever)
    sync_round = _on_loop(BudgetLoop.sync_round)
    sync_once = _on_loop(BudgetLoop.sync_once)
    enforce_users = _on_loop(BudgetLoop.enforce_users)
    enforce = _on_loop(BudgetLoop.enforce)
