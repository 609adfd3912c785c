"""The web pages, served by the service itself (no Node server at run time, no CDN: every file is local, so
the pages work on a LAN without internet). ``GET /``: the page to try every voice.

The pages are plain HTML, CSS and JavaScript modules in ``web/`` (no framework and no build step: a page
this size needs neither, and the install needs no Node). Each asset is served under a name carrying the
hash of its content (``/ui/try.3f9c0a1b2c.js``), cached for a year as immutable; the HTML names them and
is never cached, so a new version is fetched the moment it is deployed.
"""

import hashlib
import mimetypes
from pathlib import Path

from starlette.responses import HTMLResponse, Response

import runtime
from runtime.errors import NotFound
from runtime.functions import function

WEB = Path(runtime.__file__).resolve().parent.parent / "web"
IMMUTABLE = "public, max-age=31536000, immutable"
ASSET_SUFFIXES = (".js", ".css", ".svg", ".png")


def _assets() -> tuple[dict[str, str], dict[str, tuple[bytes, str]]]:
    """(file name → its hashed name, hashed name → (content, type)) for every asset in ``web/``."""
    names, files = {}, {}
    for path in sorted(WEB.iterdir()):
        if path.suffix in ASSET_SUFFIXES:
            data = path.read_bytes()
            hashed = f"{path.stem}.{hashlib.sha256(data).hexdigest()[:10]}{path.suffix}"
            names[path.name] = hashed
            kind = "text/javascript" if path.suffix == ".js" else mimetypes.guess_type(path.name)[0]
            files[hashed] = (data, f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)
    return names, files


def _page(name: str, hashed: dict[str, str]) -> str:
    html = (WEB / name).read_text(encoding="utf-8")
    for plain, versioned in hashed.items():
        html = html.replace("{{" + plain + "}}", f"/ui/{versioned}")
    return html


HASHED, FILES = _assets()
TRY_PAGE = _page("index.html", HASHED)


@function(route="/", methods=["GET"], auth="open", openapi=False)
async def try_page(request, ctx):
    """Try every voice: text, voice, format, speed; hear it; download it."""
    return HTMLResponse(TRY_PAGE, headers={"cache-control": "no-cache"})


@function(route="/ui/{file}", methods=["GET"], auth="open", openapi=False)
async def page_asset(request, ctx):
    found = FILES.get(request.path_params["file"])
    if found is None:
        raise NotFound("no such page file (an old version's? reload the page)", code="not_found")
    data, kind = found
    return Response(data, media_type=kind, headers={"cache-control": IMMUTABLE})
