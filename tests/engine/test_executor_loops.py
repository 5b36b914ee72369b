"""Executor.run from a thread that already runs an event loop (a notebook, an async app), and run_async."""
import asyncio
import threading

from fakes import CALLS, chain

from engine import INT, CancelToken, Input, Output, node
from engine.events import ListSink
from engine.executor import Executor

RELEASE = threading.Event()


@node("WaitForRelease", category="test")
class WaitForRelease:
    """A sync node that only finishes once the test's event loop has run a coroutine that releases it."""

    inputs = (Input("x", INT),)
    outputs = (Output(INT),)

    def run(self, x):
        if not RELEASE.wait(10):
            raise TimeoutError("the caller's event loop never ran while this node worked")
        return (x,)


def with_waiter(registry):
    registry.register(WaitForRelease, pack="tests")
    return {"0": {"class_type": "Const", "inputs": {"value": 3}},
            "w": {"class_type": "WaitForRelease", "inputs": {"x": ["0", 0]}},
            "out": {"class_type": "Sink", "inputs": {"value": ["w", 0]}}}


def test_sync_run_works_inside_a_running_event_loop(registry):
    async def notebook_cell():
        return Executor(registry).run(chain(3))

    result = asyncio.run(notebook_cell())
    assert result.ok and result.outputs["out"] == {"value": [4]}


def test_sync_run_inside_a_loop_runs_async_nodes_and_keeps_the_cache(registry):
    ex = Executor(registry)
    wf = {"0": {"class_type": "Const", "inputs": {"value": 7}},
          "a": {"class_type": "AsyncWait", "inputs": {"x": ["0", 0], "delay": 0.0}},
          "out": {"class_type": "Sink", "inputs": {"value": ["a", 0]}}}

    async def app():
        first = ex.run(wf, sink=ListSink())
        second = ex.run(wf)
        return first, second

    first, second = asyncio.run(app())
    assert first.ok and first.outputs["out"] == {"value": [7]}
    assert second.executed == [] and sorted(second.cached) == ["0", "a", "out"]


def test_run_async_returns_the_result_and_leaves_the_callers_loop_free(registry):
    RELEASE.clear()
    wf = with_waiter(registry)

    async def app():
        running = asyncio.ensure_future(Executor(registry).run_async(wf))
        await asyncio.sleep(0.05)
        assert not running.done()
        RELEASE.set()  # only reachable if the loop kept serving while the node ran
        return await running

    result = asyncio.run(app())
    assert result.ok and result.outputs["out"] == {"value": [3]}


def test_run_async_validates_like_run(registry):
    result = asyncio.run(Executor(registry).run_async({"x": {"class_type": "Nope", "inputs": {}}}))
    assert result.status == "invalid" and "x" in result.validation.node_errors


def test_cancelling_the_awaiting_task_cancels_the_run(registry):
    token = CancelToken()
    wf = {"0": {"class_type": "Const", "inputs": {"value": 1}},
          "s": {"class_type": "Slow", "inputs": {"x": ["0", 0], "steps": 400, "delay": 0.01}},
          "out": {"class_type": "Sink", "inputs": {"value": ["s", 0]}}}

    async def app():
        task = asyncio.ensure_future(Executor(registry).run_async(wf, cancel=token))
        while "Slow" not in CALLS:
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(app()) and token.cancelled
