"""What recsys.serve.timeouts.header_deadline takes from uvicorn's protocol classes, checked without a server.

uvicorn has no public setting that bounds the time to send a request's headers, so the deadline
subclasses its HTTP protocols and relies on their shape: ``connection_made(transport)`` sets
``self.transport``, ``self.loop`` is the connection's loop, ``self.cycle`` stays the same object
until a request's headers are complete (then it is a new ``RequestResponseCycle``), and
``on_response_complete`` runs after each response. If an upgrade of uvicorn changes any of this,
these tests fail here, by name, instead of the deadline silently never firing.
"""

import asyncio

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from recsys.serve.timeouts import header_deadline

PROTOCOLS = {"h11": H11Protocol}
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    PROTOCOLS["httptools"] = HttpToolsProtocol  # what uvicorn's "auto" picks when httptools is installed
except ImportError:  # pragma: no cover - httptools is optional
    pass


class _Transport:
    """Just enough of an asyncio transport for a protocol that never reaches the network."""

    def __init__(self):
        self.closing, self.written = False, b""

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data):
        self.written += data

    def close(self):
        self.closing = True

    def is_closing(self):
        return self.closing

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


async def _app(scope, receive, send):  # never reached by these tests' incomplete requests
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _connection(name: str, loop, timeout: float):
    config = uvicorn.Config(app=_app, http=name, log_level="warning")
    config.load()
    proto = header_deadline(PROTOCOLS[name], timeout)(config=config, server_state=ServerState(), app_state={},
                                                      _loop=loop)
    transport = _Transport()
    proto.connection_made(transport)
    return proto, transport


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_uvicorn_protocol_still_has_what_the_header_deadline_uses(name):
    assert callable(getattr(PROTOCOLS[name], "on_response_complete", None)), f"uvicorn {uvicorn.__version__}"
    loop = asyncio.new_event_loop()
    try:
        proto, transport = _connection(name, loop, 0.05)
        assert proto.loop is loop and proto.transport is transport and proto.cycle is None
        proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers not complete yet
        assert proto.cycle is None
        loop.run_until_complete(asyncio.sleep(0.2))
        assert transport.is_closing(), f"uvicorn {uvicorn.__version__}: the header deadline did not close"

        proto, transport = _connection(name, loop, 60)
        proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # complete: a request cycle starts
        assert type(proto.cycle).__name__ == "RequestResponseCycle"
        loop.run_until_complete(asyncio.sleep(0.05))  # the app answers; the connection stays open
        assert b" 204 " in transport.written and not transport.is_closing()
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.close()
