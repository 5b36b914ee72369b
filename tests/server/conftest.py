"""Server test fixtures: an app over a temporary base directory with the fast fake nodes, and a client.

Async tests run on anyio's pytest plugin (asyncio backend); `client` is aiohttp's TestClient.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from srv_helpers import make_app  # noqa: E402

from engine import activate_paths, active_paths  # noqa: E402


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def restore_active_paths():
    """create_app() activates its folders for the process; give the next test what it had."""
    previous = active_paths()
    yield
    activate_paths(previous)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "base"


@pytest.fixture
async def client(base: Path):
    async with TestClient(TestServer(make_app(base))) as c:
        yield c


