"""API description: ``GET /openapi.json`` (OpenAPI 3, assembled from every active function's declaration,
so a redeployed function's new shape shows at once) and ``GET /docs``, a Swagger UI page whose files come
from the ``swagger-ui-bundle`` wheel (no CDN: it works on a LAN without internet)."""

import mimetypes
import re
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from runtime.errors import NotFound
from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import document

_ASSET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(js|css|png|map)$")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ef speech functions — API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


def _assets_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


@function(route="/openapi.json", methods=["GET"], auth="open", openapi=False)
async def openapi_document(request, ctx):
    """The OpenAPI 3 document of every public function."""
    return json_response(document(ctx.registry.specs(), ctx.settings, rate_limited=ctx.registry.rate_limited))


@function(route="/docs", methods=["GET"], auth="open", openapi=False)
async def docs_page(request, ctx):
    return HTMLResponse(PAGE, headers={"cache-control": "no-cache"})


@function(route="/docs/{file}", methods=["GET"], auth="open", openapi=False)
async def docs_asset(request, ctx):
    name = request.path_params["file"]
    path = _assets_dir() / name
    if not _ASSET.match(name) or not await run_in_threadpool(path.is_file):
        raise NotFound(f"no docs file {name!r}", code="not_found")
    data = await run_in_threadpool(path.read_bytes)
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(data, media_type=ctype, headers={"cache-control": "public, max-age=86400"})
