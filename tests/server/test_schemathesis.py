"""The server against its own /openapi.json with schemathesis (a bounded, deterministic budget):
no 5xx on any documented operation, and every response conforms to the document (status codes,
media types, bodies)."""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (test extra) is not installed")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks as sc  # noqa: E402
from test_fuzz import server_url  # noqa: E402,F401 - the same live server fixture (own loop, thread)

SKIP = {"/ws", "/api/ws"}  # a websocket upgrade is not an HTTP operation schemathesis can call


def _schema(url: str):
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    return schema.exclude(path=sorted(SKIP))


def test_every_documented_operation_answers_without_5xx_and_as_documented(server_url):  # noqa: F811
    schema = _schema(server_url)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(base_url=server_url, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
                return
            try:
                case.validate_response(response, checks=[sc.not_a_server_error, sc.status_code_conformance,
                                                          sc.content_type_conformance])
            except BaseException as exc:  # collect every non-conformance, not only the first
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:400]}")

        operation.as_strategy()  # fails here if the document itself is not valid OpenAPI
        from hypothesis import given
        given(operation.as_strategy())(check)()
    assert operations >= 20
    assert not failures, "\n".join(failures[:20])
