"""Who may read and write the stream, and which web pages may ask.

Tokens are optional (EVENTS_READ_TOKEN for the WebSocket, EVENTS_WRITE_TOKEN
for POST /v1/events) and compared in constant time. A request with an
``Origin`` header (a browser's) must come from the API's own origin or one
of ALLOWED_ORIGINS; requests without one (the CLI, scripts) are not
affected, since no web page can send a request without it.
"""

import hmac
from typing import Mapping, Optional, Sequence

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# The query parameter a browser, which cannot set headers on a WebSocket,
# gives its read token in.
TOKEN_PARAMETER = "token"


def bearer_token(headers: Mapping[str, str]) -> Optional[str]:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_accepted(given: Optional[str], expected: Optional[SecretStr]) -> bool:
    """Whether ``given`` is the token (any request is, without one)."""
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"),
        expected.get_secret_value().encode("utf-8", "surrogatepass"),
    )


def own_origin(scheme: str, headers: Mapping[str, str]) -> Optional[str]:
    """The origin a page served by this API has: scheme and Host header."""
    host = headers.get("host")
    if not host:
        return None
    web_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return f"{web_scheme}://{host}"


def origin_allowed(
    origin: Optional[str], own: Optional[str], allowed: Sequence[str]
) -> bool:
    """Whether a request with this ``Origin`` header may be served."""
    if origin is None:
        return True
    origin = origin.rstrip("/")
    return origin == own or origin in allowed or "*" in allowed


class OriginGuard:
    """ASGI middleware: an HTTP request from a web page of another origin
    than the API's own or ALLOWED_ORIGINS gets 403 (the WebSocket route
    refuses such an upgrade itself, before accepting it)."""

    def __init__(self, app: ASGIApp, allowed: Sequence[str]) -> None:
        self.app = app
        self.allowed = list(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            own = own_origin(scope["scheme"], headers)
            if not origin_allowed(headers.get("origin"), own, self.allowed):
                response = JSONResponse(
                    {"detail": "this origin may not call the API (ALLOWED_ORIGINS)"},
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
