"""The one HTTP server standing in for both platforms: LINE under `/line`, LINE WORKS under
`/lineworks`, each with its control API under `/_sandbox/...`, and `/_sandbox/config` to
point both at the server once its port is known."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from sandbox.config import SandboxConfig
from sandbox.line import api as line_api
from sandbox.line import login as line_login
from sandbox.line.state import LineState
from sandbox.lineworks import api as lineworks_api
from sandbox.lineworks.state import WorksState


class UrlsRequest(BaseModel):
    """`POST /_sandbox/config`: where webhooks and callbacks go from now on."""

    model_config = ConfigDict(extra="forbid")
    line_webhook_url: str | None = None
    lineworks_callback_url: str | None = None


def create_app(config: SandboxConfig) -> FastAPI:
    """Both stand-ins over fresh state."""
    line = LineState(config.line)
    works = WorksState(config.lineworks)
    app = FastAPI(title="chargenet sandbox: LINE and LINE WORKS stand-ins")
    app.include_router(line_api.router(line))
    app.include_router(line_login.router(line))
    app.include_router(lineworks_api.router(works))

    @app.post("/_sandbox/config")
    async def set_urls(request: UrlsRequest) -> dict[str, str]:
        if request.line_webhook_url is not None:
            line.webhook_url = request.line_webhook_url
        if request.lineworks_callback_url is not None:
            works.callback_url = request.lineworks_callback_url
        return {"line_webhook_url": line.webhook_url, "lineworks_callback_url": works.callback_url}

    return app
