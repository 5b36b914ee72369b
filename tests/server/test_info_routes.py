"""/object_info, /system_stats, /models, /embeddings, /extensions, /features, /workflow/convert,
/openapi.json, plugin routes, the flags -> ServerConfig mapping and `diffgraph convert`."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import srv_fakes
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from srv_helpers import make_config

from engine.plugins import LoadReport, PackReport
from server.app import ROUTES, create_app
from server.compat import PromptServer
from server.config import ServerConfig, add_arguments
from server.state import PATHS
from tests.workflow_pairs import OWN, load_pair

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


async def test_object_info_lists_every_node_and_one_by_name(client):
    info = await (await client.get("/object_info")).json()
    assert set(info) == set(srv_fakes.NODE_CLASS_MAPPINGS)
    one = await (await client.get("/object_info/Const")).json()
    assert one == {"Const": info["Const"]}
    assert one["Const"]["input"]["required"]["value"][1]["control_after_generate"] is True
    for key in ("output_is_list", "output_name", "name", "display_name", "description", "category", "output_node"):
        assert key in one["Const"]
    assert await (await client.get("/object_info/Unknown")).json() == {}


async def test_system_stats_shape(client):
    stats = await (await client.get("/system_stats")).json()
    for key in ("os", "ram_total", "ram_free", "comfyui_version", "python_version", "pytorch_version",
                "embedded_python", "argv"):
        assert key in stats["system"]
    dev = stats["devices"][0]
    assert {"name", "type", "index", "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"} <= set(dev)


async def test_models_and_embeddings_list_files(client):
    paths = client.app[PATHS]
    (paths.base / "models" / "checkpoints" / "sub").mkdir(parents=True)
    (paths.base / "models" / "checkpoints" / "sub" / "m.safetensors").write_bytes(b"x")
    (paths.base / "models" / "checkpoints" / "notes.txt").write_bytes(b"x")
    (paths.base / "models" / "embeddings").mkdir(parents=True)
    (paths.base / "models" / "embeddings" / "EasyNegative.pt").write_bytes(b"x")
    assert "checkpoints" in await (await client.get("/models")).json()
    assert await (await client.get("/models/checkpoints")).json() == ["sub/m.safetensors"]
    assert (await client.get("/models/nope")).status == 404
    assert await (await client.get("/embeddings")).json() == ["EasyNegative"]


async def test_features_are_reported(client):
    feats = await (await client.get("/features")).json()
    assert feats["supports_preview_metadata"] is True and feats["max_upload_size"] == 100 * 1024 * 1024


async def test_extensions_list_and_serve_pack_web_files(base, tmp_path):
    web_dir = tmp_path / "pack" / "js"
    (web_dir / "sub").mkdir(parents=True)
    (web_dir / "a.js").write_text("// a")
    (web_dir / "sub" / "b.js").write_text("// b")
    (web_dir / "c.css").write_text("x")
    report = LoadReport([PackReport("mypack", str(tmp_path / "pack"), "loaded", web_directory=str(web_dir))])
    app = create_app(make_config(base), srv_fakes.make_registry(), packs=report)
    async with TestClient(TestServer(app)) as c:
        assert await (await c.get("/extensions")).json() == ["/extensions/mypack/a.js", "/extensions/mypack/sub/b.js"]
        assert await (await c.get("/extensions/mypack/sub/b.js")).text() == "// b"
        assert (await c.get("/extensions/other/a.js")).status == 404


async def test_pack_routes_from_prompt_server_are_mounted_and_send_sync_reaches_sockets(base):
    facade = PromptServer()

    @facade.routes.get("/mypack/hello")
    async def hello(request):
        return web.json_response({"hi": True})

    app = create_app(make_config(base), srv_fakes.make_registry(), prompt_server=facade)
    async with TestClient(TestServer(app)) as c:
        assert await (await c.get("/mypack/hello")).json() == {"hi": True}
        assert await (await c.get("/api/mypack/hello")).json() == {"hi": True}
        ws = await c.ws_connect("/ws?clientId=p")
        await ws.receive_json()
        import asyncio
        await asyncio.to_thread(facade.send_sync, "mypack.event", {"n": 1}, "p")
        assert await ws.receive_json(timeout=5) == {"type": "mypack.event", "data": {"n": 1}}
        await ws.close()
    assert facade.app is None  # unbound at cleanup


async def test_on_prompt_handlers_may_rewrite_the_body(base):
    facade = PromptServer()
    facade.add_on_prompt_handler(lambda body: {**body, "prompt": srv_fakes.show(42)})
    app = create_app(make_config(base), srv_fakes.make_registry(), prompt_server=facade)
    async with TestClient(TestServer(app)) as c:
        pid = (await (await c.post("/prompt", json={"prompt": srv_fakes.show(1)})).json())["prompt_id"]
        from srv_helpers import wait_done
        assert (await wait_done(c, pid))["outputs"]["3"]["text"] == ["42"]


async def test_convert_route_turns_ui_workflows_into_prompts(base):
    sys.path.insert(0, str(Path(__file__).parent))
    import comfy_like_nodes
    app = create_app(make_config(base), comfy_like_nodes.registry())
    ui, api = load_pair(OWN, "own_legacy_seed_control")
    async with TestClient(TestServer(app)) as c:
        for body in (ui, {"workflow": ui}):
            res = await c.post("/api/workflow/convert", json=body)
            got = (await res.json())["prompt"]
            assert {k: v["inputs"] for k, v in got.items()} == {k: v["inputs"] for k, v in api.items()}
        res = await c.post("/workflow/convert", json={"nodes": [{"id": 1, "type": "Mystery"}], "links": []})
        assert res.status == 400 and "Mystery" in (await res.json())["error"]["details"]
        assert (await c.post("/workflow/convert", json=[1, 2])).status == 400


async def test_openapi_describes_every_route(client):
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    for route in ROUTES:
        assert (route.method, route.openapi_path) in described
    mounted = {(r.method, r.resource.canonical) for r in client.app.router.routes() if r.method != "HEAD"}
    for route in ROUTES:
        assert (route.method, route.path) in mounted or route.path.endswith(".*}")
        if route.api_alias:
            assert (route.method, "/api" + route.path) in mounted


async def test_openapi_200_replies_are_what_the_routes_really_answer(client):
    """Regression: POST /free, /interrupt, /queue, /history answer 200 with an empty body where the
    document promised JSON. Every body-less GET and every documented POST is checked against its schema."""
    doc = await (await client.get("/openapi.json")).json()
    checked = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "{" in path or (method == "get" and op.get("parameters")) or method not in ("get", "post"):
                continue
            if method == "post" and path not in ("/free", "/interrupt", "/queue", "/history"):
                continue
            res = await (client.get(path) if method == "get" else client.post(path, json={}))
            body = await res.read()
            if res.status != 200:
                continue
            content = op["responses"]["200"].get("content")
            if content and "application/json" in content:
                json.loads(body)  # promised JSON: must parse
            elif content is None:
                assert body == b"", (method, path)
            checked += 1
    assert checked >= 10


def parse(*argv: str) -> ServerConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return ServerConfig.from_args(parser.parse_args(list(argv)))


def test_flags_map_to_the_config(tmp_path):
    cfg = parse("--listen", "--port", "9000", "--cpu", "--base-directory", str(tmp_path), "--preview-method", "auto",
                "--max-upload-size", "5", "--enable-cors-header", "--cache", "none", "--cache-budget", "0.5",
                "--history-size", "7", "--disable-all-custom-nodes", "--whitelist-custom-nodes", "a", "b",
                "--allow-pickle", "--temp-directory", str(tmp_path / "t"))
    assert cfg.hosts == ["0.0.0.0", "::"] and cfg.auth_required and cfg.port == 9000 and cfg.cpu
    assert cfg.max_upload_bytes == 5 * 1024 * 1024 and cfg.cors_origin == "*" and cfg.cache == "none"
    assert cfg.cache_budget_bytes == 1 << 29 and cfg.history_size == 7 and cfg.whitelist_custom_nodes == ["a", "b"]
    assert cfg.allow_pickle and cfg.previews_enabled and cfg.disable_all_custom_nodes
    assert cfg.folder_paths().temp == tmp_path / "t" / "temp"  # never the given folder itself
    default = parse()
    assert default.hosts == ["127.0.0.1"] and default.port == 8188 and not default.auth_required
    assert default.preview_method == "none" and default.load_builtin_nodes


def test_extra_model_paths_yaml_is_applied(tmp_path):
    (tmp_path / "cfg").mkdir()
    yaml_file = tmp_path / "cfg" / "extra.yaml"
    yaml_file.write_text("comfyui:\n  base_path: ../shared\n  is_default: true\n  checkpoints: models/ckpt/\n"
                         "  text_encoders: |\n    models/te\n    models/clip\n"
                         "other:\n  loras: /abs/loras\n  custom_nodes: /abs/nodes\n")
    cfg = parse("--base-directory", str(tmp_path / "base"), "--extra-model-paths-config", str(yaml_file))
    paths = cfg.folder_paths()
    assert paths.models["checkpoints"][0] == (tmp_path / "shared" / "models" / "ckpt").resolve()
    assert (tmp_path / "shared" / "models" / "clip").resolve() in paths.models["text_encoders"]
    assert paths.models["loras"][-1] == Path("/abs/loras") and Path("/abs/nodes") in paths.custom_nodes


def test_cli_convert_with_an_object_info_dump(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    import comfy_like_nodes
    dump = tmp_path / "object_info.json"
    dump.write_text(json.dumps(comfy_like_nodes.registry().object_info()))
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-m", "diffgraph", "convert", str(OWN / "own_stale_inpaint.ui.json"),
                           "--object-info", str(dump), "-o", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(out.read_text())
    _, api = load_pair(OWN, "own_stale_inpaint")
    assert got["3"]["inputs"] == api["3"]["inputs"] and got.keys() == api.keys()
    assert got["26"]["inputs"]["grow_mask_by"] == 6 and "choose file to upload" not in got["20"]["inputs"]
    proc = subprocess.run([sys.executable, "-m", "diffgraph", "convert", str(dump), "--object-info", str(dump)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "not a UI-format workflow" in proc.stderr
