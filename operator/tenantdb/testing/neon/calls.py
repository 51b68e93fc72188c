"""The log of every request the emulator served, for tests and benchmarks to inspect."""

from __future__ import annotations

import dataclasses
import datetime

__all__ = ["DROPPED_STATUS", "CallLog", "CallRecord"]

DROPPED_STATUS = 0
"""The status recorded when the connection was dropped without an answer."""


@dataclasses.dataclass(frozen=True)
class CallRecord:
    method: str
    """``GET``, ``POST`` ..."""
    route: str
    """Method and path template below ``/api/v2``: ``"POST /projects"``,
    ``"GET /projects/{project_id}"``; for an unknown path, method and the path itself."""
    path: str
    """The path requested, below ``/api/v2``."""
    status: int
    """The HTTP status answered; 0 (:data:`DROPPED_STATUS`) when the connection was dropped."""
    at: datetime.datetime
    """When the request arrived (UTC)."""
    duration_seconds: float
    injected: bool = False
    """Whether the answer was a fault the options injected (error, drop, outage)."""
    query: dict[str, str] = dataclasses.field(default_factory=dict)
    """The query parameters (``search``, ``cursor``, ...): which list a ``GET /projects`` was."""


class CallLog:
    def __init__(self) -> None:
        self._records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        self._records.append(record)

    def snapshot(self) -> list[CallRecord]:
        return list(self._records)

    def clear(self) -> None:
        self._records.clear()
