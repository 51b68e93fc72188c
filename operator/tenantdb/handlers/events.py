"""Kubernetes Events from outside kopf's handlers (the budget loop, the fleet observation).

``kopf.event`` needs a handler's context (its event queue lives in context variables set per
object), which a loop of the operator has not; our own client posts from anywhere, with the
uid ``kubectl describe`` selects events by. Posting never blocks the caller and never fails
it: an Event is a courtesy, the status is the record.
"""

from __future__ import annotations

import asyncio
import logging

from tenantdb.api import GLOBAL_DATABASE
from tenantdb.handlers.runtime import Runtime
from tenantdb.reconcile.budget_sync import EventPoster

__all__ = ["PostedEvents", "event_poster"]

_log = logging.getLogger(__name__)


def event_poster(runtime: Runtime) -> EventPoster:
    """Events about databases and budgets known by name (kind, namespace, name, type, reason,
    message), each posted by a task of its own."""
    pending: set[asyncio.Task[None]] = set()

    def done(task: asyncio.Task[None]) -> None:
        pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.warning("could not post an event: %s", task.exception())

    def post(kind: str, namespace: str, name: str, type_: str, reason: str, message: str) -> None:
        assert runtime.kube is not None
        task = asyncio.create_task(
            runtime.kube.create_event(
                api_version=GLOBAL_DATABASE.api_version,
                kind=kind,
                namespace=namespace,
                name=name,
                type_=type_,
                reason=reason,
                message=message,
            )
        )
        pending.add(task)
        task.add_done_callback(done)

    return post


class PostedEvents:
    """The reconcilers' event sink (``reconcile.ports.Events``) for one resource, outside kopf."""

    def __init__(self, post: EventPoster, *, kind: str, namespace: str, name: str) -> None:
        self._post, self._kind, self._namespace, self._name = post, kind, namespace, name
        self._log = logging.getLogger(f"{__name__}.{kind}")

    def normal(self, reason: str, message: str) -> None:
        self._log.info("%s/%s %s: %s", self._namespace, self._name, reason, message)
        self._post(self._kind, self._namespace, self._name, "Normal", reason, message)

    def warning(self, reason: str, message: str) -> None:
        self._log.warning("%s/%s %s: %s", self._namespace, self._name, reason, message)
        self._post(self._kind, self._namespace, self._name, "Warning", reason, message)
