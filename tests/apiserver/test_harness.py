"""The harness itself: it leaves nothing behind, and the README's plugin example runs as written."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenantdb.testing.apiserver import KubeApiServer, find_kube_assets

pytestmark = pytest.mark.apiserver

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its exit status.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1].startswith(("R", "S", "D"))


def _wait_dead(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if _alive(pid)]
        if not left:
            return []
        time.sleep(0.2)
    return [pid for pid in pids if _alive(pid)]


_CHILD = """
import sys, time
from tenantdb.testing.apiserver import KubeApiServer
server = KubeApiServer().start()
print(server.folder, *(p.pid for p in server._processes.values()), flush=True)
time.sleep(600)
"""


def test_a_killed_test_process_takes_its_servers_with_it(kube_apiserver: KubeApiServer) -> None:
    # kube_apiserver: only to be skipped (or failed in CI) the same way when there are no assets.
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBEBUILDER_ASSETS": str(find_kube_assets())},
    )
    folder = ""
    try:
        assert child.stdout is not None
        folder, *pid_words = child.stdout.readline().split()
        pids = [int(pid) for pid in pid_words]
        assert len(pids) >= 2, pids
        assert all(_alive(pid) for pid in pids)
        child.send_signal(signal.SIGKILL)  # no atexit, no finally: only the death signal is left
        child.wait(timeout=10)
        assert _wait_dead(pids) == []
    finally:
        child.kill()
        child.wait(timeout=10)
        if folder:  # nobody was left to remove it: the test does
            shutil.rmtree(folder, ignore_errors=True)


def test_stop_ends_every_process_and_removes_the_folder(kube_apiserver: KubeApiServer) -> None:
    server = KubeApiServer(assets=find_kube_assets()).start()
    pids = [process.pid for process in server._processes.values()]
    folder = server.folder
    assert folder is not None
    assert folder.exists()
    server.stop()
    assert _wait_dead(pids, timeout=5) == []
    assert not folder.exists()


def test_the_readme_plugin_example_runs_as_written(kube_apiserver: KubeApiServer, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Using the kit in your own tests", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python example in the README's kit section"
    (tmp_path / "test_example.py").write_text(match.group(1))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_example.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KUBEBUILDER_ASSETS": str(find_kube_assets())},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
