"""Fixtures shared by the serving tests: each test module defines its own `server`; `client` talks to it."""
import pytest

from serving.client import ImputeClient


@pytest.fixture(scope="module")
def client(server):
    """The stock-stub gRPC client on the requesting module's `server`."""
    with ImputeClient(f"127.0.0.1:{server.grpc_port}") as c:
        yield c
