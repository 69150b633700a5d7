"""Embedded mode: a local Prefect server as a child process (SQLite under the data directory).

Each flow run is recorded there and visible in its UI. We do not rely on Prefect's ephemeral mode,
where every process would start a temporary server of its own.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


class PrefectServerError(RuntimeError):
    """The embedded Prefect server did not start."""


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, SIGTERM when `duly run` dies, even by kill -9, so a restart
    does not find the port held by an orphaned server."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the pid file below catches the orphan at the next start


def _stop_orphan(pid_file: Path) -> None:
    """A server an earlier `duly run` started and did not stop (it was killed): stop it now."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"prefect" in cmdline and b"server" in cmdline:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.2)


def start_prefect_server(home: Path, *, port: int, timeout: float = 180.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start `prefect server start` and wait until /api/health answers; return the process and API URL."""
    pid_file = home / "server.pid"
    _stop_orphan(pid_file)
    if not _port_free("127.0.0.1", port):
        raise PrefectServerError(f"port {port} is in use: another duly or Prefect server is running? "
                                 "Stop it or set DULY_PREFECT__PORT")
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home.resolve()), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": "", "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port)}
    log = (home / "server.log").open("ab")
    # duly.prefect_compat: `prefect server start` with the SQLAlchemy 2.1 fix its scheduler needs
    process = subprocess.Popen([sys.executable, "-m", "duly.prefect_compat", "server", "start", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    pid_file.write_text(str(process.pid))
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PrefectServerError(f"the Prefect server exited with {process.returncode}; see {home / 'server.log'}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise PrefectServerError(f"the Prefect server did not answer within {timeout:.0f} s; see {home / 'server.log'}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
