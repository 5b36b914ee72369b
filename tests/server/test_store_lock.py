"""Regression: two servers on one base directory shared one queue, and the second one's crash recovery
put the first one's running prompt back to pending, so it ran twice."""
from __future__ import annotations

import pytest
import srv_fakes
from aiohttp.test_utils import TestClient, TestServer
from srv_helpers import make_app, post_prompt, wait_done, wait_running

from diffgraph.cli import main as cli_main
from server.store import StoreLock, StoreLockedError

pytestmark = pytest.mark.anyio


async def test_a_second_server_on_the_same_base_refuses_to_start_and_leaves_the_first_alone(base):
    async with TestClient(TestServer(make_app(base))) as client:
        pid = (await post_prompt(client, srv_fakes.show(1, sleep=0.6)))["prompt_id"]
        await wait_running(client, pid)
        with pytest.raises(StoreLockedError, match="already uses the queue"):
            make_app(base)
        entry = await wait_done(client, pid)
        assert entry["status"]["status_str"] == "success"
        history = await (await client.get("/history")).json()
        assert list(history) == [pid]  # ran once; nobody re-queued it
    # the first server stopped: the directory is free again
    async with TestClient(TestServer(make_app(base))) as client:
        assert (await client.get("/queue")).status == 200


@pytest.mark.filterwarnings("ignore")
def test_serve_exits_with_a_clear_message_when_the_queue_is_taken(tmp_path, capsys):
    lock = StoreLock(tmp_path / "user" / "queue.sqlite3")
    try:
        code = cli_main(["serve", "--base-directory", str(tmp_path), "--port", "0", "--cpu"])
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert code == 2
    assert "already uses the queue" in err and "Traceback" not in err
