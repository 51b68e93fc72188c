"""Session-wide caches: the chart is loaded once and each values set rendered once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import helm_python as helm
import pytest

from tests.deploy.support import CHART, OVERLAYS, Rendered, kubectl, kustomize, render_chart, values_sets

VALUES = values_sets()


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def rendered_sets(chart: helm.Chart) -> Callable[[str], Rendered]:
    """Render a named values set (default, or a ci/*-values.yaml), once per session."""
    cache: dict[str, Rendered] = {}

    def get(name: str) -> Rendered:
        if name not in cache:
            cache[name] = render_chart(chart, VALUES[name])
        return cache[name]

    return get


@pytest.fixture(scope="session")
def render(chart: helm.Chart) -> Callable[..., Rendered]:
    """Render ad-hoc values (not cached): for tests of one knob."""

    def do(values: dict[str, Any], **kwargs: Any) -> Rendered:
        return render_chart(chart, values, **kwargs)

    return do


@pytest.fixture(params=sorted(VALUES))
def rendered(request: pytest.FixtureRequest, rendered_sets: Callable[[str], Rendered]) -> Rendered:
    """Each values set in turn."""
    return rendered_sets(request.param)


@pytest.fixture(scope="session")
def overlay() -> Callable[[str], Rendered]:
    """`kubectl kustomize` of base / production / emulator (skips without kubectl)."""
    if kubectl() is None:
        pytest.skip("kubectl is not installed: the Kustomize overlays cannot be rendered here")

    def get(name: str) -> Rendered:
        return kustomize(OVERLAYS[name])

    return get


@pytest.fixture(params=sorted(OVERLAYS))
def kustomized(request: pytest.FixtureRequest, overlay: Callable[[str], Rendered]) -> Rendered:
    """Each Kustomize directory in turn."""
    return overlay(request.param)
