"""The FastAPI application factory. The entry point builds the Runtime and passes it in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from api import (
    accounts,
    admin,
    attachments,
    audit,
    chat_hooks,
    delegations,
    events,
    idempotency,
    misc,
    notifications,
    obligations,
    outbox_admin,
    page_notifications,
    page_settings,
    pages,
    points,
    preferences,
    requests,
    submissions,
)
from api.errors import install_error_handlers
from config import clock
from config.settings import SchedulerGroup
from flows.schedule import FlowScheduler, Nudger
from store.runtime import Runtime


def create_app(runtime: Runtime, *, scheduler: SchedulerGroup | None = None, maildir: Path | None = None,
               on_shutdown: Callable[[], Awaitable[None]] | None = None, nudger: Nudger | None = None) -> FastAPI:
    """`scheduler` given and enabled: this process runs the flows on their schedules (embedded mode).
    `on_shutdown` runs last when the server stops (closing what the entry point opened: it must run before
    uvicorn hands a captured Ctrl-C back to the event loop, which cancels whatever is still awaited).
    `nudger`, without a scheduler here: what runs a flow now after a decision (scaled mode: a Prefect
    deployment run, flows.deployments.DeploymentNudger)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if scheduler is not None and scheduler.enabled:
            app.state.scheduler = FlowScheduler(runtime, scheduler)
            await app.state.scheduler.start(now=clock.now())  # needs the running loop, hence here
        else:
            app.state.scheduler = nudger  # scaled mode: nudges go to the Prefect server (or nowhere)
        try:
            yield
        finally:
            if app.state.scheduler is not None:
                await app.state.scheduler.shutdown()
            if on_shutdown is not None:
                await on_shutdown()

    app = FastAPI(title="duly", version="0.1.0", lifespan=lifespan,
                  description="Approvals and reporting deadlines from written regulations.")
    app.state.runtime = runtime
    app.state.scheduler = None
    app.state.maildir = maildir
    install_error_handlers(app)
    idempotency.install(app)
    app.include_router(requests.router)
    app.include_router(delegations.router)
    app.include_router(obligations.router)
    app.include_router(events.router)
    app.include_router(points.router)
    app.include_router(attachments.router)
    app.include_router(submissions.router)
    app.include_router(misc.router)
    app.include_router(admin.router)
    app.include_router(pages.router)
    app.include_router(page_notifications.router)
    app.include_router(page_settings.router)
    app.include_router(accounts.router)
    app.include_router(audit.router)
    app.include_router(notifications.router)
    app.include_router(preferences.router)
    app.include_router(chat_hooks.router)
    app.include_router(outbox_admin.router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> str:
        return _HOME

    return app


_HOME = """<!doctype html><html lang="zh-CN"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>duly 制度执行引擎</title>
<body style="font-family:system-ui,'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif;max-width:40em;
margin:3em auto;padding:0 16px;line-height:1.7;color:#1f2937">
<h1 style="font-size:24px;margin-bottom:4px">duly 制度执行引擎</h1>
<p style="color:#6b7280;margin-top:0">审批与报送时限，按中国法定工作日历计算。</p>
<ul style="padding-left:20px">
<li><a href="/login">登录</a>（已登录可直接进入下列页面）</li>
<li><a href="/inbox">我的待办</a>：审批、驳回、退回、转交、加签，批量批准</li>
<li><a href="/calendar">报送日历</a>：报送事项、时限、逾期与报送</li>
<li><a href="/docs">REST API 文档（OpenAPI）</a></li>
<li><a href="/api/mail">邮件收件箱（内置邮件捕获）</a></li>
</ul></body></html>"""
