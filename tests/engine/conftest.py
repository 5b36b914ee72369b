import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fakes  # noqa: E402


@pytest.fixture
def registry():
    return fakes.make_registry()


@pytest.fixture(autouse=True)
def clear_calls():
    fakes.CALLS.clear()
    fakes.Changing.VERSION.update(v=0, nan=False, raise_=False)
    fakes.Changing.VERSION["raise"] = False
    yield
