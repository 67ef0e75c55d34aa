"""`serve` checks its port before anything else: out of range or busy is one line (issue 31, item 8).

    PYTHONPATH=. .venv/bin/python -m pytest tests/serve/test_serve_port.py -q
"""

import json
import socket

import pytest

from recsys.cli import main
from recsys.serve.app import ServeError, listening_socket, run_serve

pytestmark = pytest.mark.usefixtures("clean_cwd")


@pytest.fixture
def busy_port():
    """A port that something else listens on, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_busy_port_is_one_line_naming_it(capsys, busy_port, tmp_path):
    rc = main(["serve", "--port", str(busy_port), "--store", str(tmp_path), "--json"])
    out = capsys.readouterr()
    assert rc == 1 and len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err, out.err
    assert f"port {busy_port} on 127.0.0.1 is already in use" in out.err and "another --port" in out.err
    assert json.loads(out.out)["stage"] == "serve"


@pytest.mark.parametrize("port", [0, -1, 65536, 99999])
def test_run_serve_refuses_a_port_out_of_range(small_config, port):
    with pytest.raises(ServeError, match=f"--port must be 1 to 65535, got {port}"):
        run_serve(small_config, port=port)


def test_the_socket_it_binds_listens_on_the_port_asked(busy_port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    sock = listening_socket("127.0.0.1", free)
    try:
        assert sock.getsockname() == ("127.0.0.1", free)
    finally:
        sock.close()
    with pytest.raises(ServeError, match="cannot resolve --host"):
        listening_socket("no-such-host.invalid", free)
