"""File routes: GET /view, POST /upload/image and /upload/mask, and the static web editor and extensions.

Every user-supplied path goes through `engine.safe_join` (realpath + commonpath; no `..`, absolute
parts, NUL, backslashes or symlink escapes). Files that a browser would run (html, js, css, svg) are
served as downloads, so an uploaded page cannot script this origin.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import mimetypes
import os
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from engine import UnsafePathError, safe_join

from .replies import json_error
from .state import CONFIG, PACKS, PATHS

ACTIVE_TYPES = frozenset({"text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript",
                          "application/javascript", "text/css", "image/svg+xml", "application/xml", "text/xml"})
PREVIEW_FORMATS = {"webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG", "png": "PNG"}
UPLOAD_TYPES = ("input", "temp", "output")


def lexically_unsafe(name: str) -> bool:
    """The checks that need no file system: absolute, `..`, NUL, backslash."""
    return name.startswith("/") or "\x00" in name or "\\" in name or ".." in name.split("/") or \
        os.path.isabs(name)


# --- /view ---

async def get_view(request: web.Request) -> web.StreamResponse:
    q = request.query
    filename, subfolder, kind = q.get("filename", ""), q.get("subfolder", ""), q.get("type", "output") or "output"
    root = request.app[PATHS].directory_by_type(kind)
    if root is None:
        return json_error(400, "invalid_type", "type must be output, input or temp", kind[:40])
    if not filename or lexically_unsafe(filename):
        return json_error(400, "invalid_filename", "Invalid filename", "no absolute paths, '..', NUL or '\\'")
    try:
        path = safe_join(root, subfolder, filename)
    except UnsafePathError as exc:
        return json_error(403, "forbidden", "Path leaves its folder", str(exc)[:200])
    if not path.is_file():
        return json_error(404, "not_found", "File not found", filename[:200])
    preview, channel = q.get("preview"), (q.get("channel") or "rgba").lower()
    if preview or channel in ("rgb", "a"):
        return await _converted(path, preview, channel)
    return web.FileResponse(path, headers=_file_headers(path))


def _file_headers(path: Path) -> dict[str, str]:
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    quoted = path.name.replace('"', "")
    headers = {"X-Content-Type-Options": "nosniff", "Content-Disposition": f'inline; filename="{quoted}"',
               "Content-Type": ctype}
    if ctype in ACTIVE_TYPES:
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Disposition"] = f'attachment; filename="{quoted}"'
    return headers


async def _converted(path: Path, preview: str | None, channel: str) -> web.Response:
    if channel not in ("rgba", "rgb", "a"):
        return json_error(400, "invalid_channel", "channel must be rgba, rgb or a")
    fmt, quality = "PNG", 90
    if preview:
        name, _, q = preview.partition(";")
        fmt = PREVIEW_FORMATS.get(name.lower(), "")
        if not fmt:
            return json_error(400, "invalid_preview", "preview must be webp, jpeg or png, e.g. webp;90")
        quality = int(q) if q.isdigit() and 1 <= int(q) <= 100 else 90
    try:
        body = await asyncio.to_thread(_convert_image, path, fmt, quality, channel)
    except (OSError, ValueError) as exc:
        return json_error(415, "not_an_image", "The file cannot be read as an image", str(exc)[:200])
    return web.Response(body=body, content_type=f"image/{fmt.lower()}",
                        headers={"X-Content-Type-Options": "nosniff"})


def _convert_image(path: Path, fmt: str, quality: int, channel: str) -> bytes:
    from PIL import Image  # only for /view conversions and mask uploads

    with Image.open(path) as img:
        if channel == "a":
            alpha = img.getchannel("A") if "A" in img.getbands() else Image.new("L", img.size, 255)
            out = Image.new("RGBA", img.size)
            out.putalpha(alpha)
        elif channel == "rgb" or fmt == "JPEG":
            out = img.convert("RGB")
        else:
            out = img.convert("RGBA") if img.mode not in ("RGB", "RGBA") else img.copy()
    buf = io.BytesIO()
    out.save(buf, format=fmt, quality=quality)
    return buf.getvalue()


# --- uploads ---

async def _upload_request(request: web.Request) -> Any:
    """The multipart form and where its file goes, or the 4xx Response that says why not."""
    form = await _form(request)
    if isinstance(form, web.Response):
        return form
    target = _upload_target(request, form)
    return target if isinstance(target, web.Response) else (form, *target)


async def post_upload_image(request: web.Request) -> web.Response:
    upload = await _upload_request(request)
    if isinstance(upload, web.Response):
        return upload
    form, root, subfolder, filename, overwrite, kind = upload
    data = form["image"].file.read()
    name = await asyncio.to_thread(place_upload, root, subfolder, filename, data, overwrite)
    return web.json_response({"name": name, "subfolder": subfolder, "type": kind})


async def post_upload_mask(request: web.Request) -> web.Response:
    """Put the uploaded mask's alpha into the referenced image (keeping its PNG text) and save that."""
    upload = await _upload_request(request)
    if isinstance(upload, web.Response):
        return upload
    form, root, subfolder, filename, overwrite, kind = upload
    original = _original_ref(request, form.get("original_ref"))
    if isinstance(original, web.Response):
        return original
    if not original.is_file():
        return json_error(404, "not_found", "original_ref does not name an existing image")
    try:
        data = await asyncio.to_thread(_merge_mask, original, form["image"].file.read())
    except (OSError, ValueError) as exc:
        return json_error(400, "not_an_image", "The mask or the original is not a readable image", str(exc)[:200])
    name = await asyncio.to_thread(place_upload, root, subfolder, filename, data, overwrite)
    return web.json_response({"name": name, "subfolder": subfolder, "type": kind})


async def _form(request: web.Request) -> Any:
    if not request.content_type.startswith("multipart/"):
        return json_error(400, "invalid_upload", "Upload must be multipart/form-data with an 'image' file")
    try:
        form = await request.post()
    except (ValueError, HttpProcessingError) as exc:  # malformed multipart (incl. a part's invalid header)
        return json_error(400, "invalid_upload", "Malformed multipart body", str(exc)[:200])
    image = form.get("image")
    if image is None or not hasattr(image, "file"):
        return json_error(400, "invalid_upload", "No 'image' file in the upload")
    return form


def _upload_target(request: web.Request, form: Any) -> tuple[Path, str, str, bool, str] | web.Response:
    kind = str(form.get("type") or "input")
    if kind not in UPLOAD_TYPES:
        return json_error(400, "invalid_type", "type must be input, temp or output")
    subfolder, filename = str(form.get("subfolder") or ""), str(form["image"].filename or "")
    if not filename or "/" in filename or lexically_unsafe(filename) or filename in (".", ".."):
        return json_error(400, "invalid_filename", "Invalid file name", filename[:200])
    root = request.app[PATHS].directory_by_type(kind)
    assert root is not None
    try:
        safe_join(root, subfolder, filename)
    except UnsafePathError as exc:
        return json_error(400, "invalid_subfolder", "Path leaves its folder", str(exc)[:200])
    overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
    return Path(root), subfolder, filename, overwrite, kind


def _original_ref(request: web.Request, raw: Any) -> Path | web.Response:
    try:
        ref = json.loads(str(raw))
        name, sub, kind = str(ref["filename"]), str(ref.get("subfolder") or ""), str(ref.get("type") or "output")
    except (ValueError, KeyError, TypeError):
        return json_error(400, "invalid_upload", "original_ref must be JSON {filename, subfolder, type}")
    root = request.app[PATHS].directory_by_type(kind)
    if root is None or not name or lexically_unsafe(name):
        return json_error(400, "invalid_upload", "original_ref names an invalid file")
    try:
        return safe_join(root, sub, name)
    except UnsafePathError as exc:
        return json_error(403, "forbidden", "original_ref leaves its folder", str(exc)[:200])


def _merge_mask(original: Path, mask_bytes: bytes) -> bytes:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    with Image.open(original) as img, Image.open(io.BytesIO(mask_bytes)) as mask:
        info = PngInfo()
        for key, value in (getattr(img, "text", None) or {}).items():
            info.add_text(key, value)
        merged = img.convert("RGBA")
        merged.putalpha(mask.convert("RGBA").getchannel("A").resize(merged.size))
    buf = io.BytesIO()
    merged.save(buf, format="PNG", pnginfo=info, compress_level=4)
    return buf.getvalue()


def place_upload(root: Path, subfolder: str, filename: str, data: bytes, overwrite: bool) -> str:
    """Store `data` as `filename` (or `name (n).ext`); identical content already there is reused.

    Exclusive creation means two concurrent uploads never overwrite each other."""
    folder = safe_join(root, subfolder, "")
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).digest()
    stem, ext = os.path.splitext(filename)
    name, n = filename, 0
    while True:
        path = safe_join(root, subfolder, name)
        if overwrite and n == 0:
            tmp = path.with_name(f".{name}.upload")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            return name
        try:
            with open(path, "xb") as fh:
                fh.write(data)
            return name
        except FileExistsError:
            if path.is_file() and hashlib.sha256(path.read_bytes()).digest() == digest:
                return name  # same bytes already stored under this name: deduplicated
        n += 1
        name = f"{stem} ({n}){ext}"


# --- the web editor and pack extensions ---

async def get_index(request: web.Request) -> web.StreamResponse:
    web_root = request.app[CONFIG].web_root
    index = web_root / "index.html" if web_root else None
    if index is not None and index.is_file():
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})
    return web.Response(text="<!doctype html><title>Diffgraph</title><p>Diffgraph server is running. "
                        "The API is under <a href='/api/openapi.json'>/api</a>; the web editor is not installed.",
                        content_type="text/html")


async def get_vendor(request: web.Request) -> web.StreamResponse:
    web_root = request.app[CONFIG].web_root
    return _static(web_root / "node_modules" if web_root else None, request.match_info["path"])


async def get_extension_file(request: web.Request) -> web.StreamResponse:
    report = request.app[PACKS]
    dirs = report.web_directories() if report is not None else {}
    return _static(dirs.get(request.match_info["pack"]), request.match_info["path"])


async def get_static(request: web.Request) -> web.StreamResponse:
    return _static(request.app[CONFIG].web_root, request.match_info["path"])


def _static(root: Path | None, rel: str) -> web.StreamResponse:
    if root is None or not rel or any(part.startswith(".") for part in rel.split("/")):
        raise web.HTTPNotFound()
    try:
        path = safe_join(root, "", rel)
    except UnsafePathError:
        raise web.HTTPNotFound() from None
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


def extension_urls(report: Any) -> list[str]:
    """/extensions/<pack>/<file>.js for every JS file in each loaded pack's web directory."""
    urls = []
    for pack, folder in (report.web_directories() if report is not None else {}).items():
        for js in sorted(folder.rglob("*.js")):
            rel = js.relative_to(folder).as_posix()
            if not any(part.startswith(".") or part == "node_modules" for part in rel.split("/")):
                urls.append(f"/extensions/{pack}/{rel}")
    return urls
