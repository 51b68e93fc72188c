"""Kubernetes label selectors, as the API server reads ``?labelSelector=`` (for the emulator).

The grammar of ``k8s.io/apimachinery/pkg/labels``: requirements joined by commas, each one of
``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)`` and
``key notin (a,b)``. An object matches when it meets every requirement; ``!=`` and ``notin``
also match an object without the key, as on a real server.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

__all__ = ["InvalidSelectorError", "LabelSelector"]

_SET = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^()]*)\)\s*$")
_EQUALITY = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


class InvalidSelectorError(ValueError):
    """The selector does not parse (the API server answers 400 Bad Request)."""


@dataclasses.dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Callable[[Mapping[str, str]], bool], ...]

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        return cls(tuple(_requirement(part) for part in _split(text) if part.strip()))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        present = labels or {}
        return all(requirement(present) for requirement in self.requirements)


def _split(text: str) -> list[str]:
    """Split on the commas outside parentheses (``a in (x,y),b`` is two requirements)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _requirement(part: str) -> Callable[[Mapping[str, str]], bool]:
    if found := _SET.match(part):
        key, operator, values = found.group(1), found.group(2), {v.strip() for v in found.group(3).split(",")}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if found := _EQUALITY.match(part):
        key, operator, value = found.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if found := _EXISTS.match(part):
        negated, key = found.group(1) == "!", found.group(2)
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise InvalidSelectorError(f"unable to parse requirement: {part.strip()!r}")
