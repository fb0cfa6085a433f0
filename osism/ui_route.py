"""The events page: ``GET /ui``, its files under ``/ui/static/``, and ``GET /``,
which gives a browser the page and every other client the liveness answer.

The files ship inside the package (``osism/ui/``): nothing is built and
nothing is fetched from anywhere else. Every response of the page carries a
strict Content-Security-Policy (scripts, styles and connections from the
API's own origin only, no inline code), so even if a value of an event
holding markup ever reached the page as markup, it could not run.
"""

from pathlib import Path
from typing import Dict

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from osism.access import bearer_token, token_accepted
from osism.http_routes import liveness
from osism.settings import Settings

UI_DIRECTORY = Path(__file__).parent / "ui"
PAGE = "index.html"
PAGE_PATH = "/ui"
STATIC_PREFIX = "/ui/static/"

# The kinds of file the page is made of; a file of any other kind in
# osism/ui/ is not served.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

# The page loads its script, style and icon from its own origin and talks to
# the API on it (connect-src 'self' covers the same-origin ws:/wss: URL in
# current browsers); nothing inline, no plugins, no frames, no <base>.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load (cheap: ETag), so a new version of the
    # package is what the next load shows.
    "Cache-Control": "no-cache",
}

# What may be fetched under STATIC_PREFIX: the files of osism/ui/ by name,
# decided once. A request names an entry of this table or gets 404, so no
# path (``..``, an absolute one, an encoded slash) can reach another file.
STATIC_FILES: Dict[str, str] = {
    path.name: MEDIA_TYPES[path.suffix]
    for path in sorted(UI_DIRECTORY.iterdir())
    if path.is_file() and path.suffix in MEDIA_TYPES
}

router = APIRouter()


def _quality(accept: str, wanted: str) -> float:
    """The quality an Accept header gives the media type ``wanted``
    (``type/subtype``): that of its most specific matching range
    (``type/subtype``, then ``type/*``, then ``*/*``), 0 if none matches."""
    wanted_type = wanted.partition("/")[0]
    best_specificity, best_quality = -1, 0.0
    for entry in accept.split(","):
        media_range, *parameters = entry.split(";")
        media_range = media_range.strip().lower()
        specificity = {wanted: 2, f"{wanted_type}/*": 1, "*/*": 0}.get(media_range)
        if specificity is None or specificity <= best_specificity:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        best_specificity = specificity
        # A NaN or out-of-range q counts as "not acceptable".
        best_quality = quality if 0.0 <= quality <= 1.0 else 0.0
    return best_quality


def prefers_html(accept: str) -> bool:
    """Whether a client sending this Accept header would rather have HTML than
    JSON: a browser navigating to a page. A tie (``*/*``, curl's default, or
    no header) is not a preference: such clients keep getting JSON."""
    return _quality(accept, "text/html") > _quality(accept, "application/json")


def _page(headers: Dict[str, str]) -> Response:
    return FileResponse(
        UI_DIRECTORY / PAGE,
        media_type="text/html; charset=utf-8",
        headers={**SECURITY_HEADERS, **headers},
    )


@router.get(
    "/",
    summary="Liveness; a browser asking for HTML gets the events page",
    responses={200: {"content": {"text/html": {}}}},
)
def root(request: Request) -> Response:
    # The answer depends on Accept: caches must keep the two apart.
    vary = {"Vary": "Accept"}
    if prefers_html(request.headers.get("accept", "")):
        return _page(vary)
    return JSONResponse(liveness(), headers=vary)


@router.get(PAGE_PATH, include_in_schema=False)
def page() -> Response:
    return _page({})


@router.get(STATIC_PREFIX + "{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return JSONResponse(
            {"detail": "no such file"}, status_code=404, headers=SECURITY_HEADERS
        )
    return FileResponse(
        UI_DIRECTORY / name, media_type=media_type, headers=SECURITY_HEADERS
    )


@router.get("/ui/access", include_in_schema=False)
def read_access(request: Request) -> Dict[str, bool]:
    """Whether the stream needs a read token, and whether the one given as
    ``Authorization: Bearer`` is accepted.

    A browser cannot see why a WebSocket upgrade failed (a 401 and a server
    that is down look the same to it); the page asks here to tell "ask the
    user for the token" from "the API is restarting, try again".
    """
    settings: Settings = request.app.state.settings
    return {
        "token_required": settings.events_read_token is not None,
        "token_accepted": token_accepted(
            bearer_token(request.headers), settings.events_read_token
        ),
    }
