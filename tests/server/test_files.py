"""/view, /upload/image, /upload/mask and the static routes: contents, dedup, caps and traversal."""
from __future__ import annotations

import io
import os

import pytest
from aiohttp import FormData
from PIL import Image, PngImagePlugin
from srv_helpers import open_client

from server.state import PATHS

pytestmark = pytest.mark.anyio


def png(color=(255, 0, 0, 255), size=(4, 3), text: dict | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def form(data: bytes, filename: str = "a.png", **fields: str) -> FormData:
    fd = FormData()
    fd.add_field("image", data, filename=filename, content_type="image/png")
    for k, v in fields.items():
        fd.add_field(k, v)
    return fd


@pytest.fixture
def paths(client):
    return client.app[PATHS]


# --- /view ---

async def test_view_serves_output_input_and_temp_files(client, paths):
    (paths.output / "sub").mkdir(parents=True)
    (paths.output / "sub" / "o.png").write_bytes(png())
    (paths.input / "i.png").write_bytes(b"input-bytes")
    paths.temp.mkdir(parents=True, exist_ok=True)
    (paths.temp / "t.png").write_bytes(b"temp-bytes")
    res = await client.get("/view", params={"filename": "o.png", "subfolder": "sub", "type": "output"})
    assert res.status == 200 and await res.read() == png() and res.headers["Content-Type"] == "image/png"
    assert await (await client.get("/api/view?filename=i.png&type=input")).read() == b"input-bytes"
    assert await (await client.get("/view?filename=t.png&type=temp")).read() == b"temp-bytes"
    assert (await client.get("/view?filename=t.png&type=models")).status == 400
    assert (await client.get("/view?filename=missing.png")).status == 404
    assert (await client.get("/view")).status == 400


async def test_view_supports_range_requests(client, paths):
    (paths.output / "r.bin").write_bytes(bytes(range(100)))
    res = await client.get("/view?filename=r.bin", headers={"Range": "bytes=10-19"})
    assert res.status == 206 and await res.read() == bytes(range(10, 20))


@pytest.mark.parametrize("name", ["page.html", "x.htm", "s.js", "c.css", "i.svg", "p.xhtml"])
async def test_active_content_is_served_as_a_download(client, paths, name):
    (paths.output / name).write_text("<script>alert(1)</script>")
    res = await client.get(f"/view?filename={name}")
    assert res.status == 200 and res.headers["Content-Type"] == "application/octet-stream"
    assert res.headers["Content-Disposition"].startswith("attachment") and res.headers["X-Content-Type-Options"] == "nosniff"


async def test_view_preview_and_channels_convert_images(client, paths):
    (paths.output / "c.png").write_bytes(png((10, 20, 30, 128)))
    res = await client.get("/view?filename=c.png&preview=webp;80")
    assert res.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(await res.read())).format == "WEBP"
    rgb = Image.open(io.BytesIO(await (await client.get("/view?filename=c.png&channel=rgb")).read()))
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (10, 20, 30)
    alpha = Image.open(io.BytesIO(await (await client.get("/view?filename=c.png&channel=a")).read()))
    assert alpha.getchannel("A").getpixel((0, 0)) == 128
    (paths.output / "notimage.png").write_bytes(b"nope")
    assert (await client.get("/view?filename=notimage.png&channel=rgb")).status == 415
    assert (await client.get("/view?filename=c.png&preview=gif")).status == 400


# --- traversal ---

SECRET = b"top secret"


@pytest.fixture
def outside(tmp_path):
    path = tmp_path / "outside.txt"
    path.write_bytes(SECRET)
    return path


@pytest.mark.parametrize("query, status", [
    ("filename=../outside.txt", 400),
    ("filename=..%2Foutside.txt", 400),
    ("filename=%2E%2E/outside.txt", 400),
    ("filename=sub/../../outside.txt", 400),
    ("filename={abs}", 400),
    ("filename=%2F{abs_rel}", 400),
    ("filename=..%5Coutside.txt", 400),
    ("filename=ok.txt%00.png", 400),
    ("filename=outside.txt&subfolder=..", 403),
    ("filename=outside.txt&subfolder=..%2F..", 403),
    ("filename=outside.txt&subfolder={parent}", 403),
    ("filename=outside.txt&subfolder=a/../..", 403),
])
async def test_view_refuses_every_traversal(client, outside, query, status):
    query = query.format(abs=str(outside), abs_rel=str(outside).lstrip("/"), parent=str(outside.parent))
    res = await client.get(f"/view?{query}&type=output")
    assert res.status == status, query
    assert SECRET not in await res.read()


async def test_view_refuses_symlinks_that_leave_the_folder(client, paths, outside):
    os.symlink(outside, paths.output / "link.txt")
    os.symlink(outside.parent, paths.output / "linkdir")
    assert (await client.get("/view?filename=link.txt")).status == 403
    res = await client.get("/view?filename=outside.txt&subfolder=linkdir")
    assert res.status == 403 and SECRET not in await res.read()
    inner = paths.output / "real.txt"
    inner.write_bytes(b"fine")
    os.symlink(inner, paths.output / "inner-link.txt")  # a link that stays inside is fine
    assert await (await client.get("/view?filename=inner-link.txt")).read() == b"fine"


async def test_static_routes_refuse_traversal(client, outside):
    for path in ("/..%2F..%2Foutside.txt", "/vendor/..%2F..%2Foutside.txt", "/extensions/x/..%2Foutside.txt",
                 "/%2E%2E/%2E%2E/etc/passwd", "/.git/config"):
        res = await client.get(path)
        assert res.status in (403, 404), path
        assert SECRET not in await res.read()


# --- uploads ---

async def test_upload_stores_dedups_renames_and_overwrites(client, paths):
    a, b = png((1, 2, 3, 255)), png((9, 9, 9, 255))
    res = await client.post("/upload/image", data=form(a, "pic.png"))
    assert await res.json() == {"name": "pic.png", "subfolder": "", "type": "input"}
    res = await client.post("/upload/image", data=form(a, "pic.png"))  # same bytes: reused
    assert (await res.json())["name"] == "pic.png"
    res = await client.post("/upload/image", data=form(b, "pic.png"))  # other bytes: renamed
    assert (await res.json())["name"] == "pic (1).png"
    res = await client.post("/upload/image", data=form(b, "pic.png"))  # dedup against the renamed one
    assert (await res.json())["name"] == "pic (1).png"
    res = await client.post("/upload/image", data=form(b, "pic.png", overwrite="true"))
    assert (await res.json())["name"] == "pic.png" and (paths.input / "pic.png").read_bytes() == b
    res = await client.post("/api/upload/image", data=form(a, "s.png", subfolder="clips/x", type="temp"))
    assert await res.json() == {"name": "s.png", "subfolder": "clips/x", "type": "temp"}
    assert (paths.temp / "clips" / "x" / "s.png").read_bytes() == a


def raw_multipart(filename: str, fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart body with the file name written as browsers do (aiohttp's FormData would escape it)."""
    boundary = "xXxBoundaryxXx"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n")
    body = "".join(parts).encode() + head.encode() + png() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("filename, fields", [
    ("../evil.png", {}), ("..", {}), ("a/b.png", {}), ("a\\\\b.png", {}), ("", {}), ("/tmp/evil.png", {}),
    ("ok.png", {"subfolder": "../.."}), ("ok.png", {"subfolder": "/etc"}), ("ok.png", {"type": "models"}),
])
async def test_upload_refuses_bad_names_and_places(client, tmp_path, filename, fields):
    body, ctype = raw_multipart(filename, fields)
    res = await client.post("/upload/image", data=body, headers={"Content-Type": ctype})
    assert res.status == 400, await res.text()
    assert not (tmp_path / "evil.png").exists()
    res = await client.post("/upload/image", data=form(png(), filename, **fields))  # escaped by aiohttp
    assert res.status == 400 or (await res.json())["name"].count("%") > 0


async def test_upload_refuses_a_symlinked_subfolder_that_leaves_input(client, paths, tmp_path):
    os.symlink(tmp_path, paths.input / "escape")
    res = await client.post("/upload/image", data=form(png(), "x.png", subfolder="escape"))
    assert res.status == 400 and not (tmp_path / "x.png").exists()


async def test_upload_without_a_file_or_multipart_is_400(client):
    assert (await client.post("/upload/image", json={"image": "x"})).status == 400
    fd = FormData()
    fd.add_field("type", "input")
    fd.add_field("x", b"1", filename="x")
    assert (await client.post("/upload/image", data=fd)).status == 400


async def test_upload_size_is_capped(base):
    c = await open_client(base, max_upload_mb=0.05)
    try:
        res = await c.post("/upload/image", data=form(os.urandom(100_000), "big.png"))
        assert res.status == 413
    finally:
        await c.close()


async def test_upload_mask_puts_the_alpha_into_the_original_and_keeps_its_text(client, paths):
    (paths.input / "orig.png").write_bytes(png((200, 100, 50, 255), text={"workflow": "{}"}))
    mask = png((0, 0, 0, 7))
    ref = '{"filename": "orig.png", "subfolder": "", "type": "input"}'
    res = await client.post("/upload/mask", data=form(mask, "clipspace-mask.png", original_ref=ref))
    body = await res.json()
    assert res.status == 200 and body["type"] == "input"
    merged = Image.open(paths.input / body["name"])
    assert merged.getpixel((0, 0)) == (200, 100, 50, 7) and merged.text["workflow"] == "{}"
    bad = '{"filename": "../orig.png", "type": "input"}'
    assert (await client.post("/upload/mask", data=form(mask, "m.png", original_ref=bad))).status == 400
    bad = '{"filename": "orig.png", "subfolder": "..", "type": "input"}'
    assert (await client.post("/upload/mask", data=form(mask, "m.png", original_ref=bad))).status == 403
    assert (await client.post("/upload/mask", data=form(mask, "m.png", original_ref="nope"))).status == 400
    missing = '{"filename": "nope.png", "type": "input"}'
    assert (await client.post("/upload/mask", data=form(mask, "m.png", original_ref=missing))).status == 404


# --- the web editor and pack web folders ---

async def test_index_vendor_and_static_files_come_from_the_web_root(base, tmp_path):
    web = tmp_path / "webroot"
    (web / "node_modules" / "lib").mkdir(parents=True)
    (web / "index.html").write_text("<title>editor</title>")
    (web / "app.js").write_text("export const x = 1;")
    (web / "node_modules" / "lib" / "l.js").write_text("lib")
    c = await open_client(base, web_root=web)
    try:
        assert "editor" in await (await c.get("/")).text()
        assert await (await c.get("/app.js")).text() == "export const x = 1;"
        assert await (await c.get("/vendor/lib/l.js")).text() == "lib"
        assert (await c.get("/nothing.js")).status == 404
        assert (await c.get("/api/prompt")).status == 200  # API routes win over the catch-all
    finally:
        await c.close()


async def test_index_without_an_editor_says_so(base, tmp_path):
    c = await open_client(base, web_root=tmp_path / "none")
    try:
        res = await c.get("/")
        assert res.status == 200 and "not installed" in await res.text()
    finally:
        await c.close()


@pytest.mark.parametrize("route", ["/upload/image", "/upload/mask"])
@pytest.mark.parametrize("part", [b"\r\nhello",  # a part with no headers
                                  b'Content-Disposition: form-data; name="im\x1bage"\r\n\r\nhello'])  # a control char
async def test_malformed_multipart_parts_are_a_400(client, route, part):
    """Regression (found by schemathesis): a part header with control characters raised aiohttp's
    InvalidHeader, which is not a ValueError, and answered 500."""
    body = b"--XX\r\n" + part + b"\r\n--XX--\r\n"
    res = await client.post(route, data=body, headers={"Content-Type": "multipart/form-data; boundary=XX"})
    assert res.status == 400
    assert (await res.json())["error"]["type"] == "invalid_upload"
