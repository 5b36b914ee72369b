"""`diffgraph nodes ...`: install, list, update, remove, disable and enable node packs.

Packs live in `<base>/custom_nodes/` (`--base-directory`, default the repository, as for the server). Installing is a
`git clone`, `pip install -r requirements.txt` into the running Python, then an import check in a
child process. Every change leaves a marker a running server reports as "restart required".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from engine import FolderPaths, UnsafePathError, safe_join
from engine.plugins import DISABLED_SUFFIX, discover, mark_restart_required, pack_name

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}  # never hang waiting for credentials


class NodesError(Exception):
    """A `nodes` command failed for a reason the user can fix; printed without a traceback."""


def _add_common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # SUPPRESS: a value given before the command (or to the parent `diffgraph` parser) is not
    # overwritten by a subcommand's default, so the flags work before or after the command.
    parser.add_argument("--base-directory", default=argparse.SUPPRESS,
                        help="installation folder holding custom_nodes/ (default: the repository, as the server)")
    parser.add_argument("--extra-model-paths-config", nargs="+", default=argparse.SUPPRESS, metavar="PATH",
                        help="ComfyUI extra_model_paths.yaml file(s); their custom_nodes folders count too")
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    sub = parser.add_subparsers(dest="nodes_command", metavar="COMMAND", required=True)
    p = _add_common(sub.add_parser("install", help="git clone a pack, install its requirements, check it"))
    p.add_argument("url", help="git URL (https://, ssh, file://, or a local path)")
    p.add_argument("--ref", help="branch, tag or commit to check out")
    p.add_argument("--name", help="folder name (default: from the URL)")
    p.add_argument("--rollback", action="store_true", help="remove the clone again if anything fails")
    p.add_argument("--no-deps", action="store_true", help="skip pip install -r requirements.txt")
    p = _add_common(sub.add_parser("list", help="list packs with their state"))
    p.add_argument("--check", action="store_true", help="import every enabled pack in a child process")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = _add_common(sub.add_parser("update", help="git pull a pack (or all) and reinstall requirements"))
    p.add_argument("name", nargs="?")
    p.add_argument("--no-deps", action="store_true")
    for command, text in (("remove", "delete a pack"), ("disable", "rename a pack to NAME.disabled"),
                          ("enable", "rename NAME.disabled back")):
        _add_common(sub.add_parser(command, help=text)).add_argument("name")


def main(args: argparse.Namespace) -> int:
    paths = FolderPaths(Path(getattr(args, "base_directory", None) or PROJECT_ROOT))
    for config_file in getattr(args, "extra_model_paths_config", None) or []:
        from server.config import apply_extra_model_paths  # the server's reader of that YAML format
        apply_extra_model_paths(paths, Path(config_file))
    commands = {"install": cmd_install, "list": cmd_list, "update": cmd_update, "remove": cmd_remove,
                "disable": cmd_disable, "enable": cmd_enable}
    try:
        return commands[args.nodes_command](args, paths)
    except NodesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        raise NodesError(f"{' '.join(cmd[:4])} ... failed (exit {proc.returncode}):\n{output[-4000:]}")
    return proc


def _main_folder(paths: FolderPaths) -> Path:
    return paths.custom_nodes[0]


def _find(paths: FolderPaths, name: str) -> Path:
    """The installed entry (folder, .py or .disabled) for a pack name; refuses names that are paths."""
    _check_name(name)
    for folder in paths.custom_nodes:
        for candidate in (name, f"{name}.py", f"{name}{DISABLED_SUFFIX}", f"{name}.py{DISABLED_SUFFIX}"):
            path = folder / candidate
            if path.exists() or path.is_symlink():
                return path
    raise NodesError(f"no pack named {name!r} in {', '.join(str(f) for f in paths.custom_nodes)}")


def _check_name(name: str) -> None:
    try:
        safe_join("/", "", name)  # no '..', NUL, backslash or absolute path
    except UnsafePathError as exc:
        raise NodesError(f"{name!r} is not a pack name: {exc}") from None
    if not name or "/" in name or name.startswith("."):
        raise NodesError(f"{name!r} is not a pack name")


def name_from_url(url: str) -> str:
    tail = urlparse(url).path.rstrip("/").rsplit("/", 1)[-1] or url.rstrip("/").rsplit("/", 1)[-1]
    return tail.removesuffix(".git")


def pip_install(pack_dir: Path) -> bool:
    """`python -m pip install -r requirements.txt` into the running environment; False if none."""
    requirements = pack_dir / "requirements.txt"
    if not requirements.is_file():
        return False
    print(f"installing {requirements.name} of {pack_dir.name} ...")
    _run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)],
         cwd=pack_dir)
    return True


def check_import(paths: FolderPaths, name: str) -> dict[str, Any]:
    """Load the built-in nodes and then pack `name` in a fresh Python; its PackReport as a dict."""
    folder = _find(paths, name).parent
    cmd = [sys.executable, "-m", "diffgraph.cmd_nodes", "--check-import", str(paths.base), str(folder), name]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"name": name, "state": "failed", "nodes": [], "refused": [],
                "error": f"the import check crashed (exit {proc.returncode})", "traceback": proc.stderr[-4000:]}


def _print_check(report: dict[str, Any]) -> bool:
    ok = report.get("state") == "loaded"
    nodes = ", ".join(report.get("nodes") or []) or "none"
    print(f"{report['name']}: {report.get('state')} (nodes: {nodes})")
    for msg in report.get("refused") or []:
        print(f"  refused: {msg}")
    if not ok:
        print(f"  error: {report.get('error')}")
        if report.get("traceback"):
            print("  " + report["traceback"].rstrip().replace("\n", "\n  "))
    return ok


def cmd_install(args: argparse.Namespace, paths: FolderPaths) -> int:
    name = args.name or name_from_url(args.url)
    _check_name(name)
    folder = _main_folder(paths)
    if args.ref and args.ref.startswith("-"):
        raise NodesError(f"--ref {args.ref!r} is not a branch, tag or commit")
    dest = folder / name
    if dest.exists() or dest.with_name(name + DISABLED_SUFFIX).exists():
        raise NodesError(f"{dest} already exists; pass --name NAME or remove it first")
    folder.mkdir(parents=True, exist_ok=True)
    _run(["git", "clone", "--recurse-submodules", "--", args.url, str(dest)])
    try:
        if args.ref:
            _run(["git", "-C", str(dest), "checkout", "--quiet", args.ref])
        if not args.no_deps:
            pip_install(dest)
        ok = _print_check(check_import(paths, name))
    except NodesError:
        if args.rollback:
            shutil.rmtree(dest, ignore_errors=True)
            print(f"rolled back: removed {dest}", file=sys.stderr)
        raise
    if not ok:
        if args.rollback:
            shutil.rmtree(dest, ignore_errors=True)
            print(f"rolled back: removed {dest}")
        else:
            print(f"{name} is installed but does not load; fix it, or rerun with --rollback, or "
                  f"`diffgraph nodes remove {name}`")
        return 1
    mark_restart_required(folder, f"installed: {name}")
    print(f"installed {name} into {dest}; restart the server to load it")
    return 0


def _git_ref(path: Path) -> str:
    if not (path / ".git").exists():
        return "-"
    proc = subprocess.run(["git", "-C", str(path), "describe", "--always", "--dirty", "--tags"],
                          capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    return proc.stdout.strip() or "-"


def cmd_list(args: argparse.Namespace, paths: FolderPaths) -> int:
    rows = []
    for folder in paths.custom_nodes:
        for entry in discover(folder):
            disabled = entry.name.endswith(DISABLED_SUFFIX)
            row = {"name": pack_name(entry), "state": "disabled" if disabled else "enabled",
                   "path": str(entry), "ref": _git_ref(entry) if entry.is_dir() else "-"}
            if args.check and not disabled:
                report = check_import(paths, row["name"])
                row.update(state=report["state"], nodes=report.get("nodes", []), error=report.get("error"))
            rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        extra = f"  {row['error']}" if row.get("error") else ""
        print(f"{row['name']:<32} {row['state']:<9} {row['ref']:<14} {row['path']}{extra}")
    if not rows:
        print(f"no packs in {', '.join(str(f) for f in paths.custom_nodes)}")
    return 0


def cmd_update(args: argparse.Namespace, paths: FolderPaths) -> int:
    if args.name:
        entries = [_find(paths, args.name)]
        if not (entries[0] / ".git").exists():
            raise NodesError(f"{args.name} is not a git clone; update it by hand")
    else:
        entries = [e for f in paths.custom_nodes for e in discover(f) if (e / ".git").exists()]
    failed = 0
    for entry in entries:  # one pack failing to update does not stop the others
        try:
            ok = _update_one(entry, paths, args.no_deps)
        except NodesError as exc:
            print(f"error: {pack_name(entry)}: {exc}", file=sys.stderr)
            ok = False
        failed += not ok
    return 1 if failed else 0


def _update_one(entry: Path, paths: FolderPaths, no_deps: bool) -> bool:
    name = pack_name(entry)
    before = _git_ref(entry)
    _run(["git", "-C", str(entry), "pull", "--ff-only", "--recurse-submodules"])
    after = _git_ref(entry)
    if after != before:
        mark_restart_required(entry.parent, f"updated: {name} {before} -> {after}")
    if not no_deps:
        pip_install(entry)
    print(f"{name}: {before} -> {after}")
    return entry.name.endswith(DISABLED_SUFFIX) or _print_check(check_import(paths, name))


def cmd_remove(args: argparse.Namespace, paths: FolderPaths) -> int:
    entry = _find(paths, args.name)
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()
    mark_restart_required(entry.parent, f"removed: {args.name}")
    print(f"removed {entry}")
    return 0


def cmd_disable(args: argparse.Namespace, paths: FolderPaths) -> int:
    entry = _find(paths, args.name)
    if entry.name.endswith(DISABLED_SUFFIX):
        print(f"{args.name} is already disabled")
        return 0
    entry.rename(entry.with_name(entry.name + DISABLED_SUFFIX))
    mark_restart_required(entry.parent, f"disabled: {args.name}")
    print(f"disabled {args.name}; restart the server to unload it")
    return 0


def cmd_enable(args: argparse.Namespace, paths: FolderPaths) -> int:
    entry = _find(paths, args.name)
    if not entry.name.endswith(DISABLED_SUFFIX):
        print(f"{args.name} is already enabled")
        return 0
    target = entry.with_name(entry.name.removesuffix(DISABLED_SUFFIX))
    if target.exists():
        raise NodesError(f"cannot enable {args.name}: {target} exists too")
    entry.rename(target)
    mark_restart_required(entry.parent, f"enabled: {args.name}")
    print(f"enabled {args.name}; restart the server to load it")
    return 0


def _check_import_child(base: str, folder: str, name: str) -> int:
    """Child-process side of check_import: print one JSON line with the pack's report."""
    from engine import NodeRegistry, activate_paths
    from engine.plugins import load_builtin, load_packs

    activate_paths(FolderPaths(Path(base)))
    registry = NodeRegistry()
    builtin = load_builtin(registry)
    report = load_packs([folder], registry, disable_all=True, whitelist=[name]).get(name)
    result = report.to_dict() if report else {"name": name, "state": "failed", "error": "not found"}
    if builtin.state != "loaded":
        result.setdefault("refused", []).append(f"built-in nodes failed to load: {builtin.error}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--check-import":
        sys.exit(_check_import_child(*sys.argv[2:]))
    parser = argparse.ArgumentParser(prog="diffgraph nodes")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
