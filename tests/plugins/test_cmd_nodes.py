"""`diffgraph nodes`: install from a git URL (file://), update, disable/enable, remove, list, rollback."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from diffgraph import cmd_nodes
from engine import NodeRegistry
from engine.plugins import RESTART_MARKER, load_packs
from tests.plugins import packs

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(path: Path, files: dict[str, str], tag: str | None = None) -> str:
    packs.write_pack(path.parent, path.name, files)
    if not (path / ".git").exists():
        git("init", "-q", "-b", "main", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "pack", cwd=path)
    if tag:
        git("tag", tag, cwd=path)
    return f"file://{path}"


def nodes_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="diffgraph nodes")
    cmd_nodes.add_arguments(parser)
    return cmd_nodes.main(parser.parse_args(list(argv)))


def pack_v1(node: str) -> dict[str, str]:
    return {"__init__.py": packs.v1_node("P") + f"NODE_CLASS_MAPPINGS = {{{node!r}: P}}\n",
            # already installed in the test environment, so pip runs for real but needs no download
            "requirements.txt": "packaging\n"}


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    src = tmp_path_factory.mktemp("origin") / "remote_pack.git"
    url = make_repo(src, pack_v1("RemoteNodeV1"), tag="v1")
    return src, url


def test_install_update_disable_enable_remove_round_trip(origin, tmp_path, capsys):
    src, url = origin
    base = str(tmp_path)
    folder = tmp_path / "custom_nodes"
    assert nodes_cli("install", url, "--base-directory", base) == 0
    out = capsys.readouterr().out
    assert "installing requirements.txt of remote_pack" in out
    assert "remote_pack: loaded (nodes: RemoteNodeV1)" in out
    assert (folder / "remote_pack" / "__init__.py").is_file()
    assert (folder / RESTART_MARKER).read_text().splitlines() == ["installed: remote_pack"]
    running = load_packs([folder], NodeRegistry())  # what a server started now would hold
    assert running.get("remote_pack").nodes == ["RemoteNodeV1"]

    # update: a new commit upstream adds a node; pull, reinstall requirements, re-check
    make_repo(src, {"__init__.py": packs.v1_node("P") + packs.v1_node("Q") +
                    "NODE_CLASS_MAPPINGS = {'RemoteNodeV1': P, 'RemoteNodeV2': Q}\n"})
    assert nodes_cli("--base-directory", base, "update", "remote_pack") == 0
    out = capsys.readouterr().out
    assert "remote_pack: loaded (nodes: RemoteNodeV1, RemoteNodeV2)" in out
    assert git("rev-parse", "HEAD", cwd=folder / "remote_pack") == git("rev-parse", "HEAD", cwd=src)
    assert any(r.startswith("updated: remote_pack v1 -> ") for r in running.restart_reasons([folder]))

    assert nodes_cli("disable", "remote_pack", "--base-directory", base) == 0
    assert (folder / "remote_pack.disabled").is_dir() and not (folder / "remote_pack").exists()
    capsys.readouterr()
    assert nodes_cli("list", "--base-directory", base) == 0
    assert capsys.readouterr().out.split()[:2] == ["remote_pack", "disabled"]
    assert load_packs([folder], NodeRegistry()).get("remote_pack").state == "disabled"
    assert nodes_cli("enable", "remote_pack", "--base-directory", base) == 0
    assert (folder / "remote_pack").is_dir()
    capsys.readouterr()
    assert nodes_cli("list", "--json", "--base-directory", base) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["state"]) for r in listed] == [("remote_pack", "enabled")]
    assert nodes_cli("remove", "remote_pack", "--base-directory", base) == 0
    assert not (folder / "remote_pack").exists()
    reasons = (folder / RESTART_MARKER).read_text().splitlines()
    assert reasons[-3:] == ["disabled: remote_pack", "enabled: remote_pack", "removed: remote_pack"]


def test_install_at_a_ref_and_refusals(origin, tmp_path, capsys):
    _, url = origin
    base = str(tmp_path)
    assert nodes_cli("install", url, "--ref", "v1", "--name", "pinned", "--no-deps", "--base-directory", base) == 0
    assert "pinned: loaded (nodes: RemoteNodeV1)" in capsys.readouterr().out
    assert nodes_cli("install", url, "--name", "pinned", "--base-directory", base) == 1
    assert "already exists" in capsys.readouterr().err
    for bad in ("../evil", "a/b", ".hidden"):
        assert nodes_cli("remove", bad, "--base-directory", base) == 1
        assert "not a pack name" in capsys.readouterr().err
    assert nodes_cli("enable", "nothing_here", "--base-directory", base) == 1
    assert "no pack named 'nothing_here'" in capsys.readouterr().err
    assert (tmp_path / "custom_nodes" / "pinned").is_dir()
    assert nodes_cli("install", url, "--ref=--orphan=x", "--name", "opt", "--base-directory", base) == 1
    assert "is not a branch, tag or commit" in capsys.readouterr().err
    # a pack pinned to a tag is on a detached HEAD: its update fails, with git's reason, and nothing else
    assert nodes_cli("update", "--base-directory", base) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: pinned: git -C ") and "pull" in err


def test_a_pack_that_fails_its_import_check_is_kept_or_rolled_back(tmp_path_factory, capsys):
    src = tmp_path_factory.mktemp("origin_bad") / "bad_pack"
    url = make_repo(src, packs.RAISES)
    base = tmp_path_factory.mktemp("install_bad")
    assert nodes_cli("install", url, "--base-directory", str(base)) == 1
    out = capsys.readouterr().out
    assert "bad_pack: failed" in out and "RuntimeError: pack exploded at import" in out
    assert "--rollback" in out and (base / "custom_nodes" / "bad_pack").is_dir()
    assert not (base / "custom_nodes" / RESTART_MARKER).exists()
    assert nodes_cli("install", url, "--name", "bad2", "--rollback", "--base-directory", str(base)) == 1
    assert "rolled back" in capsys.readouterr().out
    assert not (base / "custom_nodes" / "bad2").exists()
    assert nodes_cli("install", "file:///no/such/repo.git", "--rollback", "--base-directory", str(base)) == 1
    assert "git clone" in capsys.readouterr().err


@pytest.mark.slow
def test_install_pip_installs_a_real_requirement_into_the_running_python(tmp_path):
    """A throwaway venv that sees this environment's packages (a .pth file) runs `diffgraph nodes install`;
    the pack's requirement (a tiny pure-Python package) is downloaded and installed into that venv."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    here = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "diffgraph_parent_env.pth").write_text("\n".join(here) + "\n")
    src = tmp_path / "origin" / "needs_six"
    url = make_repo(src, {"__init__.py": "import six\n" + packs.v1_node("S") +
                          "NODE_CLASS_MAPPINGS = {'NeedsSix': S}\n", "requirements.txt": "six==1.17.0\n"})
    proc = subprocess.run([str(python), "-m", "diffgraph.cmd_nodes", "install", url, "--base-directory",
                           str(tmp_path / "base")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PIP_RETRIES": "1", "PIP_TIMEOUT": "15"})  # fail fast offline
    if proc.returncode != 0 and any(s in proc.stdout + proc.stderr for s in
                                    ("No matching distribution", "Could not fetch", "NewConnectionError")):
        pytest.skip("the package index is not reachable")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "needs_six: loaded (nodes: NeedsSix)" in proc.stdout
    where = subprocess.run([str(python), "-c", "import six; print(six.__file__)"], check=True,
                           capture_output=True, text=True).stdout.strip()
    assert where.startswith(str(env_dir))
