"""``POST /api/web/forms/{form}``: a web form becomes an interaction routed to the form's queue.

The body is JSON or form-encoded (``application/x-www-form-urlencoded``; web forms take
no files). Fields are checked against the form's declaration in
webchat.yaml: a missing required field or a bad email/phone gets **422** naming each field, and
nothing is created (the sender still has what they typed). Fields the form does not declare
are not dropped: they are kept in the interaction under ``extra`` and flagged.

A browser posting from another site sends its Origin: only the server's own pages and
``allowed_origins`` may post, and they get the CORS headers to read the answer.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from callcenter.webchat.config import Form
from callcenter.webchat.service import Refused, WebChat
from crm_bridge.addresses import normalize_email, normalize_phone


def _origin_ok(webchat: WebChat, request: Request) -> str | None:
    """The request's Origin if it may post (``""`` when none was sent); None if refused."""
    origin = request.headers.get("origin", "").lower()
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    if not origin or origin == own or origin in webchat.cfg.allowed_origins:
        return origin
    return None


def _cors(origin: str) -> dict[str, str]:
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600"}  # fmt: skip


async def read_fields(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            data = json.loads(await request.body() or b"null")
        except ValueError:
            raise HTTPException(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(400, "the JSON body must be an object of fields")
        return data
    if ctype == "application/x-www-form-urlencoded":
        # The standard library's parser: a form post is text fields only, so Starlette's
        # request.form() (and the python-multipart dependency it needs) is not worth adding.
        try:
            pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise HTTPException(400, "the form body is not UTF-8") from None
        return dict(pairs)
    raise HTTPException(415, "send JSON or application/x-www-form-urlencoded fields (no files)")


Fields = dict[str, str]


def check_fields(form: Form, data: dict[str, Any], region: str) -> tuple[Fields, Fields, Fields]:
    """(fields, extra, errors): the declared fields normalised, the undeclared ones kept as
    text, and per field what is wrong."""
    fields: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, spec in form.fields.items():
        raw = data.get(name)
        value = "" if raw is None else (raw if isinstance(raw, str) else json.dumps(raw))
        value = value.strip()
        if not value:
            if spec.required:
                errors[name] = "required"
            continue
        if len(value) > spec.max_length:
            errors[name] = f"longer than {spec.max_length} characters"
            continue
        if spec.kind == "email":
            norm = normalize_email(value)
            if norm is None:
                errors[name] = "not an email address"
                continue
            value = norm
        elif spec.kind == "phone":
            norm = normalize_phone(value, region)
            if norm is None:
                errors[name] = "not a phone number"
                continue
            value = norm
        fields[name] = value
    extra = {str(k)[:64]: (v if isinstance(v, str) else json.dumps(v))[:2000]
             for k, v in data.items() if k not in form.fields}  # fmt: skip
    return fields, extra, errors


def router(webchat: WebChat) -> APIRouter:
    r = APIRouter(tags=["web"])

    @r.options("/api/web/forms/{form}", include_in_schema=False)
    async def preflight(form: str, request: Request) -> Response:
        origin = _origin_ok(webchat, request)
        if origin is None:
            return Response(status_code=403)
        return Response(status_code=204, headers=_cors(origin))

    @r.post("/api/web/forms/{form}", status_code=201,
            responses={422: {"description": "fields missing or invalid (per field)"},
                       403: {"description": "posted from a site not in allowed_origins"},
                       429: {"description": "too many posts from this address"}})  # fmt: skip
    async def submit(form: str, request: Request) -> JSONResponse:
        """A web form (declared in webchat.yaml ``forms``) → one interaction in the form's queue;
        the answer carries its ``interaction_id``."""
        origin = _origin_ok(webchat, request)
        if origin is None:
            raise HTTPException(403, "this site may not post to our forms")
        spec = webchat.cfg.forms.get(form)
        if spec is None:
            return JSONResponse({"detail": f"no form {form!r}"}, 404, headers=_cors(origin))
        ip = request.client.host if request.client else ""
        wait = webchat.form_posts.take(ip)
        if wait:
            return JSONResponse({"detail": "too many forms from your address; try again later"}, 429,
                                headers={**_cors(origin), "Retry-After": str(wait)})  # fmt: skip
        data = await read_fields(request)
        fields, extra, errors = check_fields(spec, data, webchat.region)
        if errors:
            return JSONResponse({"detail": "some fields are missing or invalid", "fields": errors}, 422,
                                headers=_cors(origin))  # fmt: skip
        assert webchat.webform is not None
        try:
            cid = await webchat.webform.submit(form, fields, spec.queue, spec.priority, ip=ip,
                                               extra=extra, service=spec.service)  # fmt: skip
        except Refused as exc:
            return JSONResponse({"detail": exc.detail}, 503, headers=_cors(origin))
        return JSONResponse({"interaction_id": cid, "form": form, "status": "received"}, 201,
                            headers=_cors(origin))  # fmt: skip

    return r
