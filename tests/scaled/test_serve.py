"""`duly serve`: an API replica of the scaled mode (no scheduler), as a real process on SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from notifications.catcher import free_port

ROOT = Path(__file__).resolve().parents[2]
DULY = str(Path(sys.executable).with_name("duly"))


def _env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DULY_"))}
    return base | {"DULY_DATABASE_URL": f"sqlite:///{tmp_path / 'duly.db'}", "DULY_DATA_DIR": str(tmp_path),
                   "DULY_SCHEDULER__ENABLED": "true"}  # `duly serve` runs no scheduler whatever this says


def test_a_replica_refuses_an_unprepared_database(tmp_path: Path) -> None:
    result = subprocess.run([DULY, "serve", "--port", str(free_port())], env=_env(tmp_path), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "the database is not ready" in result.stderr and "duly serve --prepare" in result.stderr


def test_prepare_once_then_serve_a_replica(tmp_path: Path) -> None:
    env = _env(tmp_path)
    prepared = subprocess.run([DULY, "serve", "--prepare-only"], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    assert prepared.returncode == 0, prepared.stderr
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    replica = subprocess.Popen([DULY, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert replica.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.3)
        assert ready.json() == {"status": "ready"}
        policies = httpx.get(f"http://127.0.0.1:{port}/api/policies", auth=("liu.yang", "duly-demo"), timeout=10)
        assert "it-hardware-purchase" in {p["id"] for p in policies.json()}
        assert httpx.get(f"http://127.0.0.1:{port}/api/mail", auth=("liu.yang", "duly-demo"),
                         timeout=10).status_code == 404  # no mail catcher on a replica
    finally:
        replica.send_signal(signal.SIGTERM)
        replica.wait(timeout=20)
    assert "(no scheduler)" in (tmp_path / "serve.log").read_text()
