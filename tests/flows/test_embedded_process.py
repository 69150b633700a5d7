"""`duly run` as a user runs it: Ctrl-C stops everything it started; after kill -9 a restart needs no
manual step, and a calendar job whose times passed while it was down runs once (missed runs coalesce)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pendulum
import pytest

from notifications.catcher import free_port

DULY = Path(sys.executable).parent / "duly"


@dataclass
class Running:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not printed within {timeout} s; output:\n" + "".join(self.lines[-40:]))


    def stop(self) -> int:
        """Ctrl-C, as a person would press it; the exit status."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("duly run did not stop within 60 s of Ctrl-C; output:\n"
                                 + "".join(self.lines[-40:])) from None


@dataclass
class Install:
    data_dir: Path
    env: dict[str, str]
    prefect_port: int
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self) -> Running:
        process = subprocess.Popen([str(DULY), "run"], env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        running = Running(process)
        threading.Thread(target=lambda: running.lines.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
                         daemon=True).start()
        self.started.append(process)
        running.wait_for("duly is running at", timeout=300)  # a fresh Prefect database migrates first
        return running

    @property
    def prefect_pid(self) -> int:
        return int((self.data_dir / "prefect" / "server.pid").read_text())

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data_dir / "duly.db", timeout=30)

    def flow_runs(self, flow_name: str) -> list[dict[str, object]]:
        body = json.dumps({"flows": {"name": {"any_": [flow_name]}}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.prefect_port}/api/flow_runs/filter", data=body,
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if "State:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return True  # a zombie: dead, waiting for its parent to collect it
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def install(tmp_path: Path) -> Iterator[Install]:
    prefect_port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "DULY_"))}
    env.update({"DULY_DATA_DIR": str(tmp_path / "data"), "DULY_PORT": str(free_port()),
                "DULY_PREFECT__PORT": str(prefect_port), "DULY_SMTP__PORT": str(free_port()),
                "PYTHONUNBUFFERED": "1"})
    installed = Install(tmp_path / "data", env, prefect_port)
    yield installed
    for process in installed.started:  # a failed test must not leave duly running either
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    pid_file = installed.data_dir / "prefect" / "server.pid"
    if pid_file.exists() and not _gone(installed.prefect_pid, 0):  # a failed test must not leave a server
        with contextlib.suppress(ProcessLookupError):
            os.kill(installed.prefect_pid, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="the child-dies-with-parent guarantee is Linux's prctl")
def test_ctrl_c_stops_the_app_the_prefect_server_and_the_mail_catcher(install):
    running = install.start()
    prefect_pid = install.prefect_pid
    assert running.stop() == 0
    running.wait_for("duly: stopped", timeout=5)
    assert _gone(prefect_pid, timeout=20), "the Prefect server outlived Ctrl-C"
    for port in (install.env["DULY_PORT"], install.env["DULY_SMTP__PORT"], install.prefect_port):
        assert _port_free(int(port)), f"port {port} still taken after Ctrl-C"


@pytest.mark.skipif(sys.platform != "linux", reason="the child-dies-with-parent guarantee is Linux's prctl")
def test_after_kill_9_a_restart_resumes_and_makes_up_missed_runs_once(install):
    first = install.start()
    prefect_pid = install.prefect_pid
    first.process.kill()
    first.process.wait(timeout=30)
    assert _gone(prefect_pid, timeout=30), "the Prefect server outlived kill -9 of duly run"
    # what a long stop looks like: three Monday reports missed; housekeeping cut off mid-run by the kill
    now = pendulum.now("UTC")
    with install.db() as db:
        db.execute("DELETE FROM schedule_mark")
        db.executemany("INSERT INTO schedule_mark (job, last_started_at, last_finished_at, last_outcome) "
                       "VALUES (?, ?, NULL, ?)",
                       [("report", now.subtract(weeks=3).to_datetime_string(), "completed"),
                        ("housekeeping", now.subtract(minutes=1).to_datetime_string(), "running")])
    second = install.start()
    try:
        second.wait_for("making up runs missed while stopped: report, housekeeping", timeout=10)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with install.db() as db:
                marks = dict(db.execute("SELECT job, last_outcome FROM schedule_mark").fetchall())
            if marks.get("report") == "completed" and marks.get("housekeeping") == "completed":
                break
            time.sleep(1)
        else:
            raise AssertionError(f"made-up runs did not complete: {marks}\n" + "".join(second.lines[-40:]))
        assert len(install.flow_runs("escalation-report")) == 1  # three missed times, one run
        assert len(install.flow_runs("housekeeping")) == 1
    finally:
        second.stop()
