"""`nasbench search --address`: join a real Ray head node started with `ray start --head`.

The head runs in its own process group with ``--block`` and its own ``--temp-dir``, and
teardown stops exactly that group: a machine-wide ``ray stop`` would also end other
Ray sessions of the same user (``ray stop`` kills every Ray process it finds by name).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cluster_env():
    """Ray's token authentication with a token of this test's own (not ~/.ray/auth_token)."""
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@pytest.fixture
def head_node(cluster_env):
    ray_bin = Path(sys.executable).with_name("ray")
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Unix socket paths are limited
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--num-cpus", "2", "--include-dashboard", "false", "--temp-dir", temp_dir, "--disable-usage-stats"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=cluster_env)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert head.poll() is None, head.stdout.read().decode()[-2000:]
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    try:
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops its node on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_search_joins_an_existing_cluster(head_node, cluster_env, tmp_path):
    experiments = tmp_path / "experiments"
    result = subprocess.run(
        [sys.executable, "-m", "nasbench.cli", "search", "--address", head_node, "--experiment", "cluster",
         "--experiments-dir", str(experiments), "--trials", "3", "--concurrency", "2", "--epochs", "1",
         "--export-top", "1", "--no-progress"],
        capture_output=True, text=True, timeout=600, env=cluster_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3/3 trials finished" in result.stdout
    log = [json.loads(line) for line in (experiments / "cluster" / "search.log").read_text().splitlines()]
    assert sorted(e["trial"] for e in log if "trial" in e) == [0, 1, 2]
    assert (next((experiments / "cluster" / "best").iterdir()) / "model.safetensors").is_file()
