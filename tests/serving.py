"""The app served by uvicorn on a free loopback port, in its own thread and event loop: one helper for the
live_server fixture, the authorisation matrix's world and the library end-to-end servers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from config.settings import Settings
from notifications.catcher import free_port


@contextmanager
def serve_app(settings: Settings, maildir: Path | None) -> Iterator[tuple[str, FastAPI]]:
    """Yield the base URL and the app while it serves; stop it (and close its runtime) on exit."""
    from api.app import create_app
    from store.runtime import build_runtime

    port = free_port()
    holder: dict[str, object] = {}

    def serve() -> None:
        async def main() -> None:
            rt = await build_runtime(settings)
            app = create_app(rt, scheduler=None, maildir=maildir)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            holder["app"], holder["server"] = app, server
            try:
                await server.serve()
            finally:
                await rt.close()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not getattr(holder.get("server"), "started", False):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the test server of {settings.policy_paths} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", holder["app"]  # type: ignore[misc]
    finally:
        holder["server"].should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
