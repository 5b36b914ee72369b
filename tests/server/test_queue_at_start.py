"""`main.py --queue-workflow FILE`: the main job queues its workflow through POST /prompt once listening."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from test_persistence import PACK_INIT, REPO, free_port, http, wait_for


def test_queue_workflow_flag_runs_the_file_and_logs_a_refused_one(tmp_path):
    base = tmp_path / "base"
    pack = base / "custom_nodes" / "fakepack"
    pack.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("srv_fakes.py"), pack / "srv_fakes.py")
    (pack / "__init__.py").write_text(PACK_INIT)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"1": {"class_type": "Const", "inputs": {"value": 7}},
                                "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}))
    bad.write_text(json.dumps({"1": {"class_type": "NoSuchNode", "inputs": {}}}))
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(base / "server.log", "w") as log:
        proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "--port", str(port), "--base-directory",
                                 str(base), "--no-builtin-nodes", "--queue-workflow", str(bad),
                                 "--queue-workflow", str(good)], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            history = wait_for(lambda: _history(url), timeout=60)
            (entry,) = history.values()
            assert entry["status"]["status_str"] == "success"
            assert entry["outputs"]["2"]["text"] == ["7"]
            time.sleep(0.2)
            text = (base / "server.log").read_text()
            assert "was refused" in text and "NoSuchNode" in text
            assert proc.poll() is None, "a refused workflow must not stop the server"
        finally:
            proc.kill()
            proc.wait(10)


def _history(url: str) -> dict:
    try:
        return http(url + "/history")
    except OSError:
        return {}
