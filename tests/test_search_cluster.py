"""`nasbench search --address`: a real Ray head node started the way the README says.

The head and the drivers get a HOME of their own (so ``~/.ray/auth_token`` is this
test's) and none of the ``RAY_AUTH_*`` variables: what they do is what a user who follows
the README gets. The head runs with ``--block`` in its own process group, and teardown
stops exactly that group: a machine-wide ``ray stop`` would also end other Ray sessions of
the same user (``ray stop`` kills every Ray process it finds by name).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def user_env(home: Path) -> dict:
    """The environment of a user whose HOME is ``home`` and who set no Ray variable."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return {**env, "HOME": str(home)}


def start_head(env: dict, port: int) -> subprocess.Popen:
    """The README's two head commands (plus --block, so the test can stop just this head)."""
    subprocess.run([str(RAY), "get-auth-token", "--generate"], env=env, check=True, capture_output=True)
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            "--port",
            str(port),
            "--block",
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert head.poll() is None, (head.stdout.read() if head.stdout else b"").decode()[-2000:]
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return head
        time.sleep(0.5)
    raise AssertionError("the Ray head did not come up in 180 s")


def stop_head(head: subprocess.Popen) -> None:
    os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops its node on SIGTERM
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()


def search(
    env: dict, experiments: Path, name: str, *extra: str, trials: int = 2, timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "nasbench.cli",
            "search",
            "--experiment",
            name,
            "--experiments-dir",
            str(experiments),
            "--trials",
            str(trials),
            "--concurrency",
            "2",
            "--epochs",
            "1",
            "--export-top",
            "1",
            "--no-progress",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def runtime_port(stdout: str) -> int:
    match = re.search(r"^Ray: .* at [\d.]+:(\d+) ", stdout, re.MULTILINE)
    assert match, stdout[-2000:]
    return int(match.group(1))


def test_a_cluster_started_as_the_readme_says(tmp_path):
    env = user_env(tmp_path / "head-user")
    port = free_port()
    address = f"127.0.0.1:{port}"
    experiments = tmp_path / "experiments"
    head = start_head(env, port)
    try:
        # the driver finds the head's token in ~/.ray/auth_token: nothing to export
        result = search(env, experiments, "cluster", "--address", address, trials=3)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "3/3 trials finished" in result.stdout
        assert "Ray: the cluster at" in result.stdout and runtime_port(result.stdout) == port
        log = [json.loads(line) for line in (experiments / "cluster" / "search.log").read_text().splitlines()]
        assert sorted(e["trial"] for e in log if "trial" in e) == [0, 1, 2]
        assert (next((experiments / "cluster" / "best").iterdir()) / "model.safetensors").is_file()

        # a machine without the token: one line that says what to do, no retry flood
        stranger = search(user_env(tmp_path / "stranger"), experiments, "stranger", "--address", address, timeout=120)
        line = one_error_line(stranger)
        assert "requires its authentication token" in line and "auth_token" in line

        # no --address: a runtime of its own, even with a cluster alive on this machine
        local = search(env, experiments, "local", trials=1)
        assert local.returncode == 0, local.stderr[-3000:]
        assert "Ray: a local runtime of this search" in local.stdout
        assert runtime_port(local.stdout) != port
        # --address auto: the cluster this machine started
        auto = search(env, experiments, "auto", "--address", "auto", trials=1)
        assert auto.returncode == 0, auto.stderr[-3000:]
        assert runtime_port(auto.stdout) == port
    finally:
        stop_head(head)

    # the head is gone, but Ray's current-cluster file still names it
    dead = one_error_line(search(env, experiments, "dead", "--address", address, timeout=120))
    assert f"no Ray cluster answers at {address}" in dead
    auto_dead = one_error_line(search(env, experiments, "auto-dead", "--address", "auto", timeout=120))
    assert "no Ray cluster answers" in auto_dead
    after = search(env, experiments, "after", trials=1, timeout=300)
    assert after.returncode == 0, after.stderr[-3000:]
    assert "1/1 trials finished" in after.stdout
