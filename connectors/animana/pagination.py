"""Pagination as small strategy objects (the dlt rest_client shape): the client asks `has_next_page`,
lets the paginator `update_request` before each call and `update_state` after it.

The Animana API uses an opaque cursor (`next_cursor` in the body, `cursor` in the query); `SinglePage`
covers endpoints that answer in one go. A resumable sync stores `CursorPaginator.cursor` together with
the rows of the page it belongs to and passes it back as `start_cursor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .errors import AnimanaError


@dataclass
class PageRequest:
    """What the next call will send; paginators edit `params` in place."""

    path: str
    params: dict[str, Any] = field(default_factory=dict)


class Paginator(Protocol):
    @property
    def has_next_page(self) -> bool: ...

    def update_request(self, request: PageRequest) -> None: ...

    def update_state(self, response: httpx.Response, body: Any) -> None: ...


class CursorPaginator:
    def __init__(
        self,
        start_cursor: str | None = None,
        *,
        cursor_param: str = "cursor",
        cursor_field: str = "next_cursor",
    ) -> None:
        self.cursor = start_cursor
        self.cursor_param = cursor_param
        self.cursor_field = cursor_field
        self._has_next = True

    @property
    def has_next_page(self) -> bool:
        return self._has_next

    def update_request(self, request: PageRequest) -> None:
        if self.cursor is not None:
            request.params[self.cursor_param] = self.cursor

    def update_state(self, response: httpx.Response, body: Any) -> None:
        next_cursor = body.get(self.cursor_field) if isinstance(body, dict) else None
        if next_cursor is not None and next_cursor == self.cursor:
            # A server that hands back the same cursor would loop forever; stop loudly instead.
            raise AnimanaError(f"pagination did not advance at cursor {next_cursor!r} ({response.url.path})")
        self.cursor = next_cursor
        self._has_next = next_cursor is not None


class SinglePage:
    def __init__(self) -> None:
        self._has_next = True

    @property
    def has_next_page(self) -> bool:
        return self._has_next

    def update_request(self, request: PageRequest) -> None:
        return None

    def update_state(self, response: httpx.Response, body: Any) -> None:
        self._has_next = False
