"""Request-size limits of the re-rank service, enforced before the body is parsed.

An ASGI middleware counts the body as it streams in and answers 413 as soon as it passes
``max_bytes`` (or the declared Content-Length does), so an oversized request costs no parsing.

    python -c "from recsys.serve.limits import BodyLimit; help(BodyLimit)"
"""

from __future__ import annotations

import json

class BodyLimit:
    """ASGI middleware: 413 before the body is parsed when it is over ``max_bytes``.

    A declared Content-Length is checked up front; a chunked body (no length) is read into memory
    up to the limit first and then handed on whole.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                return await self._refuse(send)
            return await self.app(scope, receive, send)
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message], receive), send)  # client went away
            chunks.append(message.get("body", b""))
            seen, more = seen + len(chunks[-1]), message.get("more_body", False)
            if seen > self.max_bytes:
                return await self._refuse(send)
        await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks)}], receive), send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[dict], receive):
    """``messages`` first, then the real channel: a streamed response (a static file) waits on it for
    the client's disconnect, and a made-up disconnect would cut that response off mid-body."""
    async def replayed():
        return messages.pop(0) if messages else await receive()
    return replayed
