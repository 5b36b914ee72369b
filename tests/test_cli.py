"""`diffgraph run` / `validate` from the command line, with a node pack in a temporary base directory."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PACK = '''
from engine import INT, STRING, Input, Output, RunContext, node

@node("CliCount", category="test")
class CliCount:
    inputs = (Input("n", INT, default=3, min=1, max=100),)
    outputs = (Output(INT),)
    def run(self, n, ctx: RunContext):
        for i in range(n):
            ctx.progress(i + 1, n)
        return (n,)

@node("CliShow", category="test", output_node=True)
class CliShow:
    inputs = (Input("value", INT),)
    outputs = ()
    def run(self, value):
        if value == 13:
            raise RuntimeError("unlucky number")
        return {"ui": {"text": [f"value={value}"]}}

@node("CliSaveText", category="test", output_node=True)
class CliSaveText:
    inputs = (Input("value", INT),)
    outputs = ()
    def run(self, value):
        from engine import active_paths
        folder = active_paths().output / "cli"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "value.txt").write_text(str(value))
        return {"ui": {"images": [{"filename": "value.txt", "subfolder": "cli", "type": "output"}]}}
'''


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / "cli_pack.py").write_text(PACK)
    return base


def run_cli(*args, base):
    return subprocess.run([sys.executable, "-m", "diffgraph", *args, "--base-directory", str(base)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def write(base, name, n):
    path = base / name
    path.write_text(json.dumps({"1": {"class_type": "CliCount", "inputs": {"n": n}},
                                "2": {"class_type": "CliShow", "inputs": {"value": ["1", 0]}}}))
    return path


def test_run_succeeds_and_prints_ui_outputs(base):
    proc = run_cli("run", str(write(base, "ok.json", 5)), base=base)
    assert proc.returncode == 0, proc.stderr
    assert 'node 2: {"text": ["value=5"]}' in proc.stdout
    assert "nodes" in proc.stderr  # the tqdm bar


def test_run_failure_exits_1_with_node_and_traceback(base):
    proc = run_cli("run", str(write(base, "fail.json", 13)), base=base)
    assert proc.returncode == 1
    assert "error: node 2 (CliShow) failed: RuntimeError: unlucky number" in proc.stderr
    assert "Traceback" in proc.stderr


def test_invalid_workflow_exits_2_with_the_api_error_text(base):
    proc = run_cli("run", str(write(base, "bad.json", 500)), "--json", base=base)
    assert proc.returncode == 2
    body = json.loads(proc.stderr)
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["1"]["errors"][0]["type"] == "value_bigger_than_max"


def test_validate_lists_every_problem(base):
    path = base / "two.json"
    path.write_text(json.dumps({"1": {"class_type": "CliCount", "inputs": {"n": 0}},
                                "2": {"class_type": "CliShow", "inputs": {"value": ["1", 0]}},
                                "3": {"class_type": "CliShow", "inputs": {}}}))
    proc = run_cli("validate", str(path), base=base)
    assert proc.returncode == 1
    assert "n: 0 is below the minimum 1" in proc.stdout and "value is required but missing" in proc.stdout


def test_run_prints_where_files_really_are_with_output_directory(base, tmp_path):
    path = base / "save.json"
    path.write_text(json.dumps({"1": {"class_type": "CliCount", "inputs": {"n": 2}},
                                "2": {"class_type": "CliSaveText", "inputs": {"value": ["1", 0]}}}))
    out = tmp_path / "elsewhere"
    proc = run_cli("run", str(path), "--output-directory", str(out), base=base)
    assert proc.returncode == 0, proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("node 2: ")]
    printed = Path(line.removeprefix("node 2: "))
    assert printed == out / "cli" / "value.txt" and printed.read_text() == "2"


def test_a_node_with_a_single_step_shows_no_rate(base):
    proc = run_cli("run", str(write(base, "one.json", 1)), base=base)
    assert proc.returncode == 0, proc.stderr
    assert "node 1" in proc.stderr and "1/1" in proc.stderr  # its step bar was drawn
    assert "step/s" not in proc.stderr and "s/step" not in proc.stderr


def test_validate_reports_an_unknown_class_once_with_a_suggestion_and_every_other_problem(base):
    path = base / "typo.json"
    path.write_text(json.dumps({"1": {"class_type": "CliCount", "inputs": {"n": 0}},
                                "2": {"class_type": "CliShw", "inputs": {"value": ["1", 0]}},
                                "3": {"class_type": "CliShow", "inputs": {}}}))
    proc = run_cli("validate", str(path), base=base)
    assert proc.returncode == 1
    assert proc.stdout.count("CliShw does not exist") == 1, proc.stdout
    assert "did you mean CliShow" in proc.stdout
    assert "n: 0 is below the minimum 1" in proc.stdout and "value is required but missing" in proc.stdout
    assert ".:" not in proc.stdout
