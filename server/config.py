"""ServerConfig: every setting of one server, built from ComfyUI-compatible command-line flags.

`add_arguments(parser)` declares the flags; `ServerConfig.from_args(ns)` turns them into a frozen-ish
dataclass; `folder_paths()` builds the engine's FolderPaths, with `--extra-model-paths-config` files.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine import FolderPaths

DEFAULT_MAX_UPLOAD_MB = 100.0
PREVIEW_METHODS = ("none", "auto", "latent2rgb", "taesd")
RAY_OUTPUT_MODES = ("transfer", "shared")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ComfyUI's flags where they mean the same, plus ours (auth token, cache, history size)."""
    add = parser.add_argument
    add("--listen", nargs="?", const="0.0.0.0,::", default="127.0.0.1", metavar="IP",
        help="address(es) to bind, comma separated; bare --listen binds every interface (0.0.0.0,::)")
    add("--port", type=int, default=8188, help="TCP port (default 8188)")
    add("--cpu", action="store_true", help="run every model on the CPU")
    add("--base-directory", type=Path, default=None,
        help="root holding models/, custom_nodes/, input/, output/, temp/, user/ (default: the repository)")
    add("--output-directory", type=Path, default=None)
    add("--input-directory", type=Path, default=None)
    add("--temp-directory", type=Path, default=None, help="temp files go in <this>/temp, wiped at start")
    add("--user-directory", type=Path, default=None, help="user data and the queue database")
    add("--extra-model-paths-config", type=Path, nargs="+", action="extend", default=[], metavar="PATH",
        help="ComfyUI extra_model_paths.yaml file(s)")
    add("--disable-all-custom-nodes", action="store_true", help="load no custom node pack (see whitelist)")
    add("--whitelist-custom-nodes", nargs="+", action="extend", default=[], metavar="PACK",
        help="packs still loaded with --disable-all-custom-nodes")
    add("--preview-method", choices=PREVIEW_METHODS, default="none",
        help="sampler previews over the websocket (default none: binary frames confuse some clients)")
    add("--max-upload-size", type=float, default=DEFAULT_MAX_UPLOAD_MB, help="request body limit in MB")
    add("--enable-cors-header", nargs="?", const="*", default=None, metavar="ORIGIN",
        help="send CORS headers for ORIGIN (default *), which also relaxes the Origin check")
    add("--auth-token", default=None,
        help="require this token (random per start when bound to a non-loopback address)")
    add("--cache", choices=("lru", "none"), default="lru", help="output cache policy across prompts")
    add("--cache-budget", type=float, default=4.0, help="output cache budget in GB (lru)")
    add("--history-size", type=int, default=10000, help="finished prompts kept in history")
    add("--allow-pickle", action="store_true",
        help="let loaders read pickle checkpoints (.ckpt/.pt) with weights_only; off by default")
    add("--no-builtin-nodes", action="store_true", help=argparse.SUPPRESS)  # tests: custom packs only
    add("--ray", nargs="?", const="local", default=None, metavar="auto|ADDRESS",
        help="run prompts on Ray actors (extra [ray]): bare --ray starts a local Ray instance, 'auto' or "
             "ADDRESS joins a running cluster; see server/README.md")
    add("--ray-workers", type=int, default=None, metavar="N",
        help="Ray workers (actors), each with its own model cache (default: one per GPU, 1 without GPUs)")
    add("--ray-outputs", choices=RAY_OUTPUT_MODES, default="transfer",
        help="how output files reach this server: 'transfer' through Ray's object store (default), "
             "'shared' when every node writes to this server's output directory (a shared path)")
    add("--ray-attempts", type=int, default=3, metavar="N",
        help="starts of one prompt on workers that died before it is failed (default 3)")


@dataclass
class ServerConfig:
    """Settings of one server. Paths are absolute once `resolved()` has run."""

    listen: str = "127.0.0.1"
    port: int = 8188
    cpu: bool = False
    base_directory: Path = field(default_factory=Path.cwd)
    output_directory: Path | None = None
    input_directory: Path | None = None
    temp_directory: Path | None = None
    user_directory: Path | None = None
    extra_model_paths_config: list[Path] = field(default_factory=list)
    disable_all_custom_nodes: bool = False
    whitelist_custom_nodes: list[str] = field(default_factory=list)
    preview_method: str = "none"
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    cors_origin: str | None = None
    auth_token: str | None = None
    cache: str = "lru"
    cache_budget_gb: float = 4.0
    history_size: int = 10000
    allow_pickle: bool = False
    load_builtin_nodes: bool = True
    web_root: Path | None = None
    workflows_dir: Path | None = None
    argv: list[str] = field(default_factory=list)
    ray: str | None = None              # None: the in-process worker; "local", "auto" or a cluster address
    ray_workers: int | None = None
    ray_outputs: str = "transfer"
    ray_attempts: int = 3

    @classmethod
    def from_args(cls, ns: argparse.Namespace, argv: list[str] | None = None) -> ServerConfig:
        repo = Path(__file__).resolve().parents[1]
        base = ns.base_directory or repo
        extra = list(ns.extra_model_paths_config)
        if (repo / "extra_model_paths.yaml").is_file():  # read automatically, as ComfyUI does
            extra.insert(0, repo / "extra_model_paths.yaml")
        return cls(
            listen=ns.listen, port=ns.port, cpu=ns.cpu, base_directory=Path(base),
            output_directory=ns.output_directory, input_directory=ns.input_directory,
            temp_directory=ns.temp_directory, user_directory=ns.user_directory,
            extra_model_paths_config=extra,
            disable_all_custom_nodes=ns.disable_all_custom_nodes,
            whitelist_custom_nodes=list(ns.whitelist_custom_nodes), preview_method=ns.preview_method,
            max_upload_mb=ns.max_upload_size, cors_origin=ns.enable_cors_header, auth_token=ns.auth_token,
            cache=ns.cache, cache_budget_gb=ns.cache_budget, history_size=ns.history_size,
            allow_pickle=ns.allow_pickle, load_builtin_nodes=not ns.no_builtin_nodes,
            argv=list(argv or []), ray=getattr(ns, "ray", None), ray_workers=getattr(ns, "ray_workers", None),
            ray_outputs=getattr(ns, "ray_outputs", "transfer"), ray_attempts=getattr(ns, "ray_attempts", 3))

    # --- derived settings ---

    @property
    def hosts(self) -> list[str]:
        return [h.strip() for h in self.listen.split(",") if h.strip()] or ["127.0.0.1"]

    @property
    def loopback_only(self) -> bool:
        return all(is_loopback(h) for h in self.hosts)

    @property
    def auth_required(self) -> bool:
        """A token is required when one was given, and always off loopback."""
        return bool(self.auth_token) or not self.loopback_only

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def cache_budget_bytes(self) -> int:
        return int(self.cache_budget_gb * (1 << 30))

    @property
    def previews_enabled(self) -> bool:
        return self.preview_method != "none"

    def with_token(self) -> ServerConfig:
        """A copy that carries a token: the given one, or a fresh random one when auth is required."""
        if self.auth_required and not self.auth_token:
            return replace(self, auth_token=secrets.token_urlsafe(24))
        return self

    def folder_paths(self) -> FolderPaths:
        # As ComfyUI: temp files go in <given>/temp, so wiping temp never empties the given folder.
        temp = Path(self.temp_directory) / "temp" if self.temp_directory else None
        paths = FolderPaths(Path(self.base_directory), output=self.output_directory, input=self.input_directory,
                            temp=temp, user=self.user_directory)
        for config_file in self.extra_model_paths_config:
            apply_extra_model_paths(paths, config_file)
        return paths

    def display_argv(self) -> list[str]:
        """argv with the token value hidden (shown by /system_stats)."""
        out, hide = [], False
        for arg in self.argv:
            out.append("***" if hide else ("--auth-token=***" if arg.startswith("--auth-token=") else arg))
            hide = arg == "--auth-token"
        return out


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def apply_extra_model_paths(paths: FolderPaths, config_file: Path) -> None:
    """Read a ComfyUI extra_model_paths.yaml and add its folders (see comfyui-api.md §5)."""
    import yaml  # a dependency of the server only; the engine stays standard-library

    config_file = Path(config_file)
    try:
        data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{config_file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{config_file}: expected a mapping of sections, got {type(data).__name__}")
    for section in data.values():
        if not isinstance(section, dict):
            continue
        base = section.get("base_path")
        base_path = _expand(str(base), config_file.parent) if base else None
        first = bool(section.get("is_default", False))
        for folder, value in section.items():
            if folder in ("base_path", "is_default") or value is None:
                continue
            dirs = []
            for line in str(value).splitlines():
                if line.strip():
                    raw = Path(os.path.expandvars(os.path.expanduser(line.strip())))
                    dirs.append(raw if raw.is_absolute() else (base_path or config_file.parent) / raw)
            paths.add_model_paths(str(folder), [d.resolve() for d in dirs], first=first)


def _expand(value: str, relative_to: Path) -> Path:
    path = Path(os.path.expandvars(os.path.expanduser(value)))
    return path if path.is_absolute() else (relative_to / path)
