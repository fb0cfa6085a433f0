"""The HTTP and WebSocket API of osism events.

:func:`create_app` builds the FastAPI app around one WebSocket manager and
one event bridge; its lifespan wires them together, runs the heartbeat, and on
exit stops the bridge's threads and the manager's tasks.

``app`` is the API as OSISM's containers start it (``uvicorn osism.api:app``),
around the module's singletons and the settings of the environment. Building
it connects to nothing and starts no thread; its lifespan does that once a
server runs it.
"""

import asyncio
import contextlib
import logging
from typing import AsyncIterator, Optional

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from osism import logs
from osism.access import OriginGuard
from osism.draining import SigtermDrain, deliver_then_close
from osism.http_routes import router as http_router
from osism.memory import return_large_blocks_to_the_kernel
from osism.services.event_bridge import EventBridge, event_bridge
from osism.services.websocket_manager import WebSocketManager, websocket_manager
from osism.settings import Settings, get_settings
from osism.stream_route import StreamShortcut
from osism.stream_route import router as stream_router
from osism.ui_route import router as ui_router

logger = logging.getLogger("osism.api")


async def _send_heartbeats(manager: WebSocketManager, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await manager.send_heartbeat()


def create_app(
    manager: Optional[WebSocketManager] = None,
    bridge: Optional[EventBridge] = None,
    settings: Optional[Settings] = None,
    set_up_logging: bool = False,
) -> FastAPI:
    """The API around ``manager`` and ``bridge`` (the module singletons by default).

    ``set_up_logging``: at start-up, log osism's messages at LOG_LEVEL unless
    logging is already set up (for servers that only set up their own
    loggers, as uvicorn does).
    """
    settings = get_settings() if settings is None else settings
    if manager is None:
        manager = websocket_manager
        manager.apply_settings(settings)
    bridge = event_bridge if bridge is None else bridge

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if set_up_logging:
            logs.configure_unless_configured(settings.log_level, settings.log_format)
        logs.protect_server_logs()
        return_large_blocks_to_the_kernel()
        await manager.start()
        if bridge.loads_history():
            # Until the bridge has loaded the Redis history, a resume waits
            # for it (RESUME_HISTORY_WAIT at most, see resume_wait).
            manager.history.current = False
        # Attaching tries Redis, which may take up to its connect timeout:
        # in a thread, so the API serves at once (embedded until it is done).
        attaching = asyncio.create_task(
            asyncio.to_thread(bridge.set_websocket_manager, manager)
        )
        heartbeat = asyncio.create_task(
            _send_heartbeats(manager, settings.heartbeat_interval)
        )

        draining = SigtermDrain(
            asyncio.get_running_loop(),
            lambda: deliver_then_close(
                bridge, manager, settings.shutdown_drain_timeout
            ),
        )
        draining.install()
        logger.info("osism events API started")
        try:
            yield
        finally:
            draining.uninstall()
            heartbeat.cancel()
            await asyncio.gather(heartbeat, attaching, return_exceptions=True)
            await asyncio.to_thread(bridge.shutdown)
            await manager.stop()
            logger.info("osism events API stopped")

    # /docs and /redoc are off: their pages load Swagger UI and ReDoc from a
    # CDN, which an OSISM manager often cannot reach. The schema stays at
    # /openapi.json.
    app = FastAPI(
        title="osism events",
        description="The OpenStack event stream of the OSISM manager",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.websocket_manager = manager
    app.state.event_bridge = bridge
    app.state.settings = settings
    app.include_router(http_router)
    app.include_router(stream_router)
    app.include_router(ui_router)
    # Pages of ALLOWED_ORIGINS may call the API (CORS); a request from any
    # other page is refused before it reaches a route (OriginGuard, added
    # last, runs first).
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.add_middleware(OriginGuard, allowed=settings.allowed_origins)
    app.add_middleware(StreamShortcut)
    return app


app = create_app(set_up_logging=True)
