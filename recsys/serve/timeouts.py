"""Time limits of the re-rank service, so a slow or silent client cannot hold a connection.

Three bounds, all from ``[rerank]`` in the config:

- ``header_timeout``: a connection must finish sending a request's headers this many seconds
  after it opens (or after its previous response); otherwise uvicorn's protocol closes it.
  uvicorn has no such limit of its own: ``timeout_keep_alive`` stops at a request's first byte,
  ``h11_max_incomplete_event_size`` bounds the headers' size, not their time, and
  ``limit_concurrency`` counts connections. So ``header_deadline`` subclasses uvicorn's protocol
  and uses its internals (``loop``, ``transport``, ``cycle``, ``on_response_complete``), checked
  against uvicorn 0.54.0 (h11 0.16.0, httptools 0.9.0); tests/serve/test_serve_uvicorn_pin.py
  fails by name if an upgrade changes them.
- ``body_timeout``: the whole body must arrive this many seconds after the headers; otherwise
  the ASGI middleware ``BodyTimeout`` answers 408 and the connection is closed.
- ``max_connections`` and ``keep_alive``: uvicorn's ``limit_concurrency`` (503 beyond it) and
  ``timeout_keep_alive`` (idle seconds between requests).

    python -c "from recsys.serve.timeouts import uvicorn_options; help(uvicorn_options)"
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pipeline.config import RerankConfig


class _BodyTooSlow(Exception):
    """The request body did not arrive before its deadline."""


class BodyTimeout:
    """ASGI middleware: 408 when a request's body is not complete ``timeout`` seconds after it started."""

    def __init__(self, app, timeout: float):
        self.app, self.timeout = app, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline, state = loop.time() + self.timeout, {"body_done": False, "started": False}

        async def timed_receive():
            if state["body_done"]:  # after the body: waiting for a disconnect is not bounded here
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                raise _BodyTooSlow() from None
            state["body_done"] = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def tracked_send(message):
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except _BodyTooSlow:
            if not state["started"]:
                await _refuse(send, self.timeout)


async def _refuse(send, timeout: float) -> None:
    body = json.dumps({"detail": f"request body not received within {timeout:g} s"}).encode()
    await send({"type": "http.response.start", "status": 408,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def header_deadline(protocol: type, timeout: float) -> type:
    """A subclass of uvicorn's HTTP ``protocol`` that closes a connection whose next request's
    headers are not complete ``timeout`` seconds after it opened or after its last response.

    uvicorn internals (checked against 0.54.0, H11Protocol and HttpToolsProtocol; pinned by
    tests/serve/test_serve_uvicorn_pin.py): ``self.cycle`` is replaced by a new request cycle once
    a request's headers are complete, ``on_response_complete`` runs after each response."""

    class HeaderDeadline(protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_deadline()

        def _arm_header_deadline(self) -> None:
            # uvicorn creates a new request cycle once a request's headers are complete
            self.loop.call_later(timeout, self._header_deadline_passed, self.cycle)

        def _header_deadline_passed(self, cycle) -> None:
            if self.cycle is cycle and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


def uvicorn_options(limits: RerankConfig) -> dict[str, Any]:
    """The uvicorn.Config keywords for ``limits``: protocol with header deadline, keep-alive, connection cap."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return {"http": header_deadline(AutoHTTPProtocol, limits.header_timeout),
            "timeout_keep_alive": limits.keep_alive, "limit_concurrency": limits.max_connections}
