"""The OpenAPI document and the docs page, and schemathesis fuzzing every documented operation of a live
service: no 5xx, every status, content type, header and body as documented, and invalid input refused."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from runtime.app import create_app
from runtime.settings import Settings
from tests.support import ServiceProcess, require_binary, run_cli

MIN_CASES = 1000
_cases: dict[tuple[str, str], int] = {}


@pytest.fixture(scope="module")
def fuzz_service(tmp_path_factory):
    """eSpeak only (fast synthesis for the generated valid requests) and small text limits, which the
    document states, so generated texts stay short."""
    env = {"ENGINES": "espeak", "MAX_TEXT_CHARS": "120", "MAX_JOB_TEXT_CHARS": "240", "ACCESS_LOG": "false",
           "REQUEST_TIMEOUT_S": "30"}
    proc = ServiceProcess(tmp_path_factory.mktemp("fuzz") / "data", env=env)
    # Logged in: the admin functions are fuzzed with an admin key (a session's logout would end the run)
    made = run_cli(proc, "keys", "create", "fuzzer", "--admin")
    assert made.returncode == 0, made.stderr
    proc.headers = {"Authorization": f"Bearer {made.stdout.strip()}"}
    try:
        yield proc.start().wait_ready()
    finally:
        proc.stop()


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_every_operation(fuzz_service, mode):
    """Valid requests (positive) and requests that break the schema (negative: they must get a 4xx)."""
    api = schemathesis.openapi.from_url(fuzz_service.url + "/openapi.json")
    failures = []
    for result in api.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=150, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def run(case):
            label = (case.operation.label, mode)
            _cases[label] = _cases.get(label, 0) + 1
            case.call_and_validate(checks=CHECKS, timeout=60, headers=fuzz_service.headers)

        try:
            run()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, operation.label  # no parameters: nothing can be invalid
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label} ({mode}): {exc}")
    assert not failures, "\n\n".join(failures)


def test_fuzzing_ran_enough_cases(fuzz_service):
    if not _cases:
        pytest.fail("run the whole module: the fuzz tests above count their cases")
    total = sum(_cases.values())
    print(f"schemathesis: {total} generated cases", _cases)
    assert total >= MIN_CASES, f"only {total} generated cases: {_cases}"
    doc = httpx.get(fuzz_service.url + "/openapi.json").json()
    operations = {f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method in ops}
    assert {label for label, _ in _cases} == operations  # every documented operation was exercised


def test_document_covers_every_public_function(service):
    doc = httpx.get(service.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    app = create_app(Settings.from_env())
    documented = {op["operationId"].removesuffix("_get").removesuffix("_post")
                  for path in doc["paths"].values() for op in path.values()}
    public = {spec.name for spec in app.ctx.registry.specs() if spec.openapi is not False}
    assert documented == public
    assert {"openapi_document", "docs_page", "docs_asset"}.isdisjoint(public)
    speech = doc["paths"]["/v1/audio/speech"]["post"]
    body = speech["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["input"]["maxLength"] == 4096  # the configured MAX_TEXT_CHARS
    assert set(speech["responses"]["200"]["content"]) == {
        "audio/mpeg", "audio/ogg", "audio/aac", "audio/flac", "audio/wav", "audio/pcm", "text/event-stream"}
    for path in doc["paths"].values():
        for op in path.values():
            for status, answer in op["responses"].items():
                own_503 = op["operationId"] in ("health", "readyz", "health_tts") and status == "503"
                if int(status) >= 400 and not own_503:
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_docs_page_renders_every_operation_in_a_real_browser(service):
    """Headless Chromium runs Swagger UI's JavaScript, which fetches /openapi.json and draws each operation."""
    chromium = require_binary("chromium")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                          "--dump-dom", service.url + "/docs"], capture_output=True, text=True, timeout=120).stdout
    doc = httpx.get(service.url + "/openapi.json").json()
    drawn = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert drawn == set(doc["paths"]), (drawn, dom[-2000:])
    assert "ef speech functions" in dom and "Failed to load API definition" not in dom


def test_docs_page_uses_packaged_assets_only(service):
    page = httpx.get(service.url + "/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(ref.startswith("/docs/") for ref in refs), refs  # nothing from a CDN
    for ref in refs:
        asset = httpx.get(service.url + ref)
        assert asset.status_code == 200 and len(asset.content) > 100, ref
    assert "SwaggerUIBundle" in httpx.get(service.url + "/docs/swagger-ui-bundle.js").text
    for bad in ("../../../etc/passwd", "..%2F..%2Fsettings.py", "index.j2", "nope.js"):
        resp = httpx.get(service.url + "/docs/" + bad)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found", bad
