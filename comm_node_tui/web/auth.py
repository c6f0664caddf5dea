"""The token in front of the room.

The URL printed once carries the token (`?token=...`). The first request with it trades it
for an HttpOnly, SameSite=Strict cookie and a redirect to the same path without it, so the
token leaves the address bar, the history and any Referer at once; every later request (the
page, its scripts, the websocket) carries the cookie instead, which page scripts cannot read
and other sites' pages cannot send. Any request with neither, or with a wrong one, is a 403
with one line of text. The websocket also checks its Origin against its Host: a page of
another origin that learnt the port gets no room even if the browser sent the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
from collections.abc import Awaitable, Callable

from aiohttp import web

TOKEN_PARAM = "token"
FORBIDDEN = "403 forbidden: open the URL with the token that `comm-node web` printed\n"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# On every response, a refusal too: nothing cached, no Referer sent anywhere, no framing by
# another site (a framed room would take a visitor's keys), no content-type guessing.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Gate:
    """Checks the token or its cookie on every request (an aiohttp middleware)."""

    def __init__(self, token: str, log: Callable[[str], None] | None = None) -> None:
        self.token = token
        self._token = token.encode()
        # Cookies are shared by every port of a host: a name of its own per server keeps two
        # `comm-node web` on one machine from overwriting each other's. A hash prefix of the
        # token says nothing about it.
        self.cookie_name = "comm-node-" + hashlib.sha256(self._token).hexdigest()[:12]
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def valid(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    def refuse(self, request: web.Request, why: str) -> web.Response:
        # the path only: a wrong token in the query must not reach a log either
        self.log(
            f"comm-node web: refused {request.method} {request.path} from {request.remote}: {why}"
        )
        return web.Response(status=403, text=FORBIDDEN)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if TOKEN_PARAM in request.query:
            if not self.valid(request.query.get(TOKEN_PARAM)):
                return self.refuse(request, "wrong token")
            clean = request.rel_url.with_query(
                [(k, v) for k, v in request.query.items() if k != TOKEN_PARAM]
            )
            response = web.HTTPSeeOther(location=str(clean))
            response.set_cookie(
                self.cookie_name,
                request.query[TOKEN_PARAM],
                httponly=True,
                samesite="Strict",
                path="/",
            )
            return response
        if not self.valid(request.cookies.get(self.cookie_name)):
            return self.refuse(request, "no token")
        if request.headers.get("Upgrade", "").lower() == "websocket" and not same_origin(request):
            return self.refuse(request, "websocket from another origin")
        return await handler(request)


def same_origin(request: web.Request) -> bool:
    """The websocket's Origin is the page's own (a browser always sends Origin with one)."""
    origin = request.headers.get("Origin")
    return origin is not None and origin in (f"http://{request.host}", f"https://{request.host}")


async def secure_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the headers of HEADERS on every response, the websocket's too."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = "comm-node"  # not which Python and aiohttp, to strangers
