"""`duly deploy`, `duly worker` and the deployments' data, against Prefect's test server (no PostgreSQL)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.settings import PACKAGE_ROOT, Settings
from duly.cli import app
from duly.deploy import deploy, report_lines
from flows.deployments import DEPLOYMENTS, full_name, nudge_deployment, select
from notifications.catcher import free_port

SHANGHAI = "Asia/Shanghai"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("PREFECT_API_URL", "DULY_PREFECT__API_URL", "DULY_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_default_schedules() -> None:
    schedules = {s.key: s.cron or f"every {s.interval_seconds:g} s" for s in DEPLOYMENTS}
    assert schedules == {"sweep": "* * * * *", "deliver": "every 30 s", "materialise": "0 1 * * *",
                         "digest": "*/15 * * * *", "escalation-report": "0 9 * * 1", "housekeeping": "30 3 * * *"}
    cron = DEPLOYMENTS[0].schedule(SHANGHAI)
    assert (cron.cron, cron.timezone) == ("* * * * *", SHANGHAI)
    interval = DEPLOYMENTS[1].schedule(SHANGHAI)
    assert interval.interval.total_seconds() == 30 and interval.timezone == SHANGHAI
    assert interval.anchor_date == DEPLOYMENTS[1].schedule(SHANGHAI).anchor_date  # deploying again changes nothing


def test_selecting_deployments() -> None:
    assert [s.key for s in select(["deliver", "sweep"])] == ["sweep", "deliver"]
    fast = select(["sweep"], sweep_seconds=5)[0]
    assert (fast.cron, fast.interval_seconds) == (None, 5)
    with pytest.raises(ValueError, match="unknown deployment.*nope.*choose from sweep, deliver"):
        select(["nope"])
    assert full_name("deliver") == "deliver/duly"
    assert full_name("materialise", "staging") == "materialise-obligations/staging"


def test_each_flow_present_has_the_name_its_deployment_expects() -> None:
    """The deployment's full name (`flow/deployment`) is what nudge_deployment asks for."""
    checked = 0
    for spec in DEPLOYMENTS:
        path = PACKAGE_ROOT / spec.path
        if not path.is_file():
            continue  # written by someone else; `duly deploy` skips it until it exists
        module_spec = importlib.util.spec_from_file_location(f"_check_{spec.key.replace('-', '_')}", path)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        assert getattr(module, spec.entrypoint.partition(":")[2]).name == spec.flow_name, spec.key
        checked += 1
    assert checked >= 3


def test_deploy_without_a_server_says_what_to_set(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["deploy"])
    assert result.exit_code == 2
    assert "set DULY_PREFECT__API_URL (or PREFECT_API_URL)" in result.output


def test_deploy_to_a_server_that_does_not_answer(clean_env: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    clean_env.setenv("DULY_PREFECT__API_URL", url)
    result = CliRunner().invoke(app, ["deploy", "--only", "sweep"])
    assert result.exit_code == 2
    assert f"cannot reach the Prefect server at {url}" in result.output
    assert "prefect server start" in result.output


def test_deploy_an_unknown_name(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["deploy", "--only", "sweeep"])
    assert result.exit_code == 2
    assert "unknown deployment(s) sweeep: choose from sweep, deliver" in result.output


def test_worker_refuses_to_start_without_the_application_database(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "DULY_DATABASE_URL is not set" in result.output


def test_worker_refuses_to_start_without_a_prefect_server(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DULY_DATABASE_URL", "postgresql://duly@127.0.0.1/duly")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "no Prefect server configured" in result.output


async def test_deploy_registers_what_exists_with_its_schedule_and_skips_what_does_not(prefect_harness) -> None:
    from prefect.client.orchestration import get_client

    settings = Settings(prefect={"mode": "external", "work_pool": "duly-test-pool", "deployment_name": "test"})
    notes, outcomes = await deploy(settings, select())
    assert "created the process work pool 'duly-test-pool'" in notes
    present = {s.key for s in DEPLOYMENTS if (PACKAGE_ROOT / s.path).is_file()}
    assert {o.spec.key for o in outcomes if o.status == "registered"} == present
    assert all(o.status == "absent" for o in outcomes if o.spec.key not in present)
    lines, ok = report_lines(outcomes, asked=set())
    assert ok
    assert any(line.startswith("registered  sweep/test ") and "cron '* * * * *' (Asia/Shanghai)" in line
               for line in lines), lines
    async with get_client() as client:
        sweep = await client.read_deployment_by_name("sweep/test")
        pool = await client.read_work_pool("duly-test-pool")
    assert pool.type == "process"
    assert sweep.work_pool_name == "duly-test-pool" and sweep.entrypoint == "flows/sweep.py:sweep"
    assert [(s.schedule.cron, s.schedule.timezone) for s in sweep.schedules] == [("* * * * *", SHANGHAI)]
    # deploying again updates in place; the interval schedule keeps its anchor
    _, again = await deploy(settings, select(["deliver"]))
    assert [o.status for o in again] == ["registered"]


async def test_a_flow_file_that_does_not_load_is_reported(prefect_harness, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "sweep.py").write_text("this is not python(\n")
    settings = Settings(prefect={"mode": "external", "work_pool": "duly-test-pool", "code_dir": tmp_path})
    _, outcomes = await deploy(settings, select(["sweep", "deliver"]))
    assert [o.status for o in outcomes] == ["failed", "absent"]
    lines, ok = report_lines(outcomes, asked={"sweep", "deliver"})
    assert not ok
    assert lines[0].startswith("FAILED      sweep: cannot load flows/sweep.py:sweep")
    assert lines[1].startswith("FAILED      deliver: flows/deliver.py is not in")


async def test_a_nudge_starts_a_run_now_and_a_failed_nudge_is_only_logged(prefect_harness, caplog) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    settings = Settings(prefect={"mode": "external", "work_pool": "duly-test-pool", "deployment_name": "nudged"})
    await deploy(settings, select(["deliver"]))
    assert await nudge_deployment("deliver", deployment_name="nudged") is True
    async with get_client() as client:
        runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=["nudged"])))
    assert any(not r.auto_scheduled and r.state and r.state.is_scheduled() for r in runs)
    assert await nudge_deployment("deliver", deployment_name="never-deployed") is False
    assert "could not nudge deployment deliver" in caplog.text


def test_deployments_follow_the_schedule_settings_of_embedded_mode() -> None:
    from config.settings import SchedulerGroup

    schedule = SchedulerGroup(sweep_seconds=120, deliver_seconds=10, digest_cron="0 8 * * *",
                              report_cron="30 8 * * fri", materialise_months_ahead=3)
    chosen = {s.key: s for s in select(schedule=schedule)}
    assert (chosen["sweep"].cron, chosen["sweep"].interval_seconds) == (None, 120)
    assert chosen["deliver"].interval_seconds == 10
    assert chosen["digest"].cron == "0 8 * * *" and chosen["escalation-report"].cron == "30 8 * * fri"
    assert dict(chosen["materialise"].parameters) == {"months_ahead": 3}
    assert select(["sweep"], schedule=SchedulerGroup())[0].cron == "* * * * *"  # 60 s: on the minute


async def test_a_burst_of_decisions_nudges_the_prefect_server_once(prefect_harness) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from flows.deployments import DeploymentNudger

    settings = Settings(prefect={"mode": "external", "work_pool": "duly-test-pool", "deployment_name": "burst"})
    await deploy(settings, select(["deliver"]))
    nudger = DeploymentNudger(deployment_name="burst", min_gap_seconds=60)
    for _ in range(20):  # twenty decisions within a second
        nudger.nudge("deliver")
    await nudger.shutdown()
    assert nudger.sent == 1
    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["burst"])))
    assert len([r for r in runs if not r.auto_scheduled]) == 1
