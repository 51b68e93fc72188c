"""The metric names a PromQL expression reads, and the names the operator exports.

Enough of PromQL to find every metric name in the chart's alerts and dashboard: strings, label
matchers, ranges and the label lists of ``by``/``on``/... are dropped, function calls and
keywords skipped, and what is left is a metric name.
"""

from __future__ import annotations

import functools
import re

from tenantdb.metrics import Metrics

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
             "group_left", "group_right", "inf", "nan", "atan2"}  # fmt: skip
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group() in _KEYWORDS:
            continue  # a function call or a keyword
        names.add(match.group())
    return names


@functools.cache
def exported_names() -> frozenset[str]:
    """Every series name ``operator/tenantdb/metrics.py`` exports (a counter's ``_total``, a
    histogram's ``_bucket``/``_sum``/``_count``)."""
    names = set()
    for family in Metrics().registry.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return frozenset(names)
