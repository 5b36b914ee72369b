"""GET /api/workflows and /api/workflows/{name}: the Examples menu's list and files, never outside workflows/."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from srv_helpers import make_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def wf_client(base: Path, tmp_path: Path):
    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "b.json").write_text(json.dumps({"1": {"class_type": "Const", "inputs": {"value": 2}}}))
    (folder / "a.json").write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    (folder / "notes.txt").write_text("not a workflow")
    (folder / "broken.json").write_text("{")
    (tmp_path / "secret.json").write_text('{"secret": 1}')
    client = TestClient(TestServer(make_app(base, workflows_dir=folder)))
    await client.start_server()
    yield client
    await client.close()


async def test_lists_json_files_sorted_and_flags_the_feature(wf_client):
    assert await (await wf_client.get("/api/workflows")).json() == ["a.json", "b.json", "broken.json"]
    assert (await (await wf_client.get("/api/features")).json())["example_workflows"] is True


async def test_serves_one_workflow(wf_client):
    resp = await wf_client.get("/api/workflows/b.json")
    assert resp.status == 200
    assert await resp.json() == {"1": {"class_type": "Const", "inputs": {"value": 2}}}


@pytest.mark.parametrize("name,status", [("missing.json", 404), ("notes.txt", 404), ("broken.json", 422),
                                         ("..%2Fsecret.json", 400), ("%2E%2E%2Fsecret.json", 400)])
async def test_bad_names_are_4xx_with_a_reason(wf_client, name, status):
    resp = await wf_client.get(f"/api/workflows/{name}")
    assert resp.status == status
    body = await resp.json()
    assert "secret" not in json.dumps(body) or status != 200


async def test_the_repository_examples_are_served_by_default(base):
    client = TestClient(TestServer(make_app(base)))
    await client.start_server()
    try:
        names = await (await client.get("/api/workflows")).json()
        repo = Path(__file__).resolve().parents[2] / "workflows"
        assert names == sorted(p.name for p in repo.glob("*.json"))
    finally:
        await client.close()
