"""`GET /api/v1/openapi.json` and `GET /api/v1/docs`: the API described, served by the app itself.

The page is plain HTML built from the same table as the OpenAPI document (openapi.py): no
script, no stylesheet or font from a CDN, so it works on a clinic network with no way out.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from web.api.errors import ERROR_CODES, guarded
from web.api.openapi import LEFT_OUT, OPERATIONS, PREFIX, SCHEMAS, VERSION, document

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #1d2330; }
.scroll { overflow-x: auto; margin: 1em 0; }
.scroll:focus-visible { outline: 2px solid #0a5870; outline-offset: 2px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35em .6em; border-bottom: 1px solid #dde1e8; }
code, pre { font: 13px/1.45 ui-monospace, monospace; background: #f3f5f8; }
pre { padding: .8em; margin: 0; }
.m { font-weight: 600; }
"""

_EXAMPLE = """curl -s -X POST https://YOUR-HOST/api/v1/diagnose/skin-lesion \\
  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
  -d '{"lesion_description": "코 옆의 진주빛 구진, 6개월간 커짐", "additional_info": "50세 남성"}'"""


def _scrolling(label: str, inner: str) -> str:
    """`inner` in a box that scrolls sideways on a narrow screen. A keyboard must reach it to scroll it (WCAG 2.1.1),
    so it is a Tab stop, and a named region so that a screen reader says what the stop is."""
    return f'<div class="scroll" tabindex="0" role="region" aria-label="{escape(label)}">{inner}</div>'


def _body_text(body: str | None) -> str:
    if body is None:
        return ""
    if body == "json-or-form":
        return "JSON (DiagnoseRequest) or multipart (ImageForm)"
    kind, name = body.split(":")
    return f"{'JSON' if kind == 'json' else 'multipart/form-data'} ({name})"


def _fields(name: str) -> str:
    props = SCHEMAS[name].get("properties", {})
    required = set(SCHEMAS[name].get("required", ()))
    rows = "".join(f"<tr><td><code>{escape(field)}</code>{' (required)' if field in required else ''}</td>"
                   f"<td>{escape(str(spec.get('type', 'object')))}</td>"
                   f"<td>{escape(spec.get('description', ''))}</td></tr>" for field, spec in props.items())
    table = f"<table><tr><th>field</th><th>type</th><th>notes</th></tr>{rows}</table>"
    return f"<h3>{escape(name)}</h3>{_scrolling(f'{name} fields', table)}"


def page() -> str:
    """The human-readable page: every endpoint, the bodies, the errors, what is left out and why."""
    endpoints = "".join(
        f"<tr><td class=m>{op.method}</td><td><code>{escape(PREFIX + op.path)}</code></td>"
        f"<td>{escape(op.summary)}</td><td>{escape(_body_text(op.body))}</td>"
        f"<td>{op.ok[0]} {escape(op.ok[1])}</td><td>{', '.join(map(str, op.errors))}</td>"
        f"<td>{'token' if op.auth else 'none'}</td></tr>" for op in OPERATIONS)
    left_out = "".join(f"<li><code>{method} {escape(PREFIX + path)}</code>: {escape(why)}</li>"
                       for method, path, why in LEFT_OUT)
    errors = "".join(f"<tr><td>{status}</td><td><code>{escape(code)}</code></td></tr>"
                     for code, status in sorted(ERROR_CODES.items(), key=lambda item: item[1]))
    schemas = "".join(_fields(name) for name in ("DiagnoseRequest", "ImageForm", "SkinDiagnosisResponse",
                                                 "Reading", "ArbitrationRequest", "Arbitration", "JobStatus",
                                                 "RefineRequest", "RefineResponse", "AnalysisPage"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Skin lesion AI assessment API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>Skin lesion AI assessment API <small>{VERSION}</small></h1>
<p>The original backend's endpoints, served by this app on the same engine as its pages: the same time budget,
fallback, cache and history (recorded with source <code>api</code>, under the token's user). The machine-readable
description is at <a href="{PREFIX}/openapi.json"><code>{PREFIX}/openapi.json</code></a> (OpenAPI 3.1).
Liveness without a token: <code>GET /healthz</code>.</p>
<h2>Authentication</h2>
<p>Send <code>Authorization: Bearer &lt;token&gt;</code>. An administrator makes a token on the server with
<code>python cli.py tokens add USER [--name LABEL] [--expires-days N]</code> (shown once, stored hashed), lists them
with <code>tokens list</code> and revokes one with <code>tokens revoke ID</code>. A token acts as its user: what it
submits is recorded under that user, and it sees that user's analyses and jobs (an administrator's, everyone's).</p>
{_scrolling("Example request", f"<pre>{escape(_EXAMPLE)}</pre>")}
<h2>Endpoints</h2>
{_scrolling("Endpoints", "<table><tr><th>method</th><th>path</th><th>what</th><th>body</th><th>answer</th>"
           f"<th>errors</th><th>auth</th></tr>{endpoints}</table>")}
<p>Add <code>response_format=xml</code> (in the body, or as a query parameter of a GET) for
<code>application/xml</code>: a <code>&lt;response&gt;</code> element with one child per field, list items as
<code>&lt;item_0&gt;</code>, <code>&lt;item_1&gt;</code>, …</p>
<p>For an EMR, <code>GET {PREFIX}/analyses/{{analysis_id}}/fhir</code> (or <code>Accept: application/fhir+json</code>
on <code>GET {PREFIX}/analyses/{{analysis_id}}</code>) answers the case as a FHIR R4 Bundle; add
<code>?patient=Patient/123</code> to name the EMR's patient in it.</p>
<h2>Left out on purpose</h2>
<ul>{left_out}</ul>
<h2>Errors</h2>
<p>Every error is JSON <code>{{"error": CODE, "detail": "what to do"}}</code>; 429 and 503 carry
<code>Retry-After</code>. A message never repeats the patient's text or a provider's error body.</p>
{_scrolling("Errors", f"<table><tr><th>status</th><th>error</th></tr>{errors}</table>")}
<h2>Bodies</h2>
{schemas}
</body></html>"""


@guarded
async def openapi_json(request: Request) -> Response:
    """The OpenAPI 3.1 document (no token needed: it describes, it holds no data)."""
    return JSONResponse(document())


@guarded
async def docs(request: Request) -> Response:
    """The endpoints for people, as one self-contained HTML page."""
    return HTMLResponse(page(), headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


__all__ = ["docs", "openapi_json", "page"]
