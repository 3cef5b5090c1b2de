"""The app as an ASGI application: Streamlit (``dashboard/app.py``) plus the route that sets the session
cookie (see ``dashboard/components/browser_session.py`` for why it is a route) and ``/health`` and ``/metrics``
(``dashboard/components/health_routes.py``).

Run with ``streamlit run dashboard/asgi.py`` (Streamlit finds ``app`` and serves it with uvicorn).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboard.components.browser_session import COOKIE, ROUTE, redeem
from dashboard.components.health_routes import ROUTES as HEALTH_ROUTES
from warehouse.security.sessions import ABSOLUTE_TIMEOUT


def _same_origin(request: Request) -> bool:
    # Defence in depth against cross-site posts (the code itself is already unguessable and single-use).
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


async def session_cookie(request: Request) -> Response:
    if not _same_origin(request):
        return Response(status_code=403)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    if request.method == "DELETE":
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
        return response
    try:
        code = (await request.json())["code"]
    except (ValueError, KeyError, TypeError):
        return Response(status_code=400)
    token = redeem(str(code))
    if token is None:
        return Response(status_code=403)
    response.set_cookie(
        COOKIE, token, max_age=int(ABSOLUTE_TIMEOUT.total_seconds()), path="/", secure=secure, httponly=True,
        samesite="strict",
    )  # fmt: skip
    return response


app = st.App(
    str(Path(__file__).with_name("app.py")),
    routes=[Route(ROUTE, session_cookie, methods=["POST", "DELETE"]), *HEALTH_ROUTES],
)
