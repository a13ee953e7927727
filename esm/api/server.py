"""The control API's HTTP listener (`api: {listen}`): Lambda's event source mapping operations
and the tag operations on their ARNs.

Each request is bounded in size, authenticated (SigV4, when `api.credentials` is set), routed and
parsed by the Lambda model (esm.api.protocol), answered by the mapping manager (documents by
esm.api.rendering), and counted in
`esm_api_requests_total{operation, status}`. Every failure is a Lambda error (`x-amzn-ErrorType`
and a JSON body the SDKs parse), never a stack trace; the Authorization header and the secret are
never logged.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable

from aiohttp import web

from esm.api import sigv4
from esm.api.manager import MappingManager
from esm.api.protocol import ApiError, Route, allowed_methods, match_route, parse, render
from esm.api.rendering import configuration, decode_marker, encode_marker
from esm.config.references import ReferenceUnreadable, read_reference
from esm.config.settings import ApiCredentials, ApiSettings
from esm.errors import EsmError
from esm.observability.health import start_site
from esm.observability.metrics import Metrics

log = logging.getLogger("esm.api")

# The largest CreateEventSourceMapping is a few filters of 4 KB and some ARNs; 256 KiB is ample.
MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_ITEMS = 100  # Lambda's page size when MaxItems is absent


class CredentialsUnavailable(EsmError):
    """`api.credentials` names an environment variable or a file that is not there."""


def read_credentials(credentials: ApiCredentials) -> tuple[str, str]:
    def read(ref: Any, what: str) -> str:
        try:
            return read_reference(ref, one_line=True)
        except ReferenceUnreadable as error:
            raise CredentialsUnavailable(f"api.credentials.{what}: {error}") from None

    return read(credentials.access_key_id, "access_key_id"), read(credentials.secret_access_key, "secret_access_key")


def _error(error: ApiError | sigv4.AuthError, status: int | None = None) -> web.Response:
    if isinstance(error, sigv4.AuthError):
        body: dict[str, Any] = {"message": error.message}
        status = status or 403
    else:
        body = error.body()
        status = error.status
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        headers={"x-amzn-ErrorType": error.code, "x-amzn-RequestId": os.urandom(16).hex()})


class ApiServer:
    def __init__(self, settings: ApiSettings, manager: MappingManager, metrics: Metrics,
                 region_for: Callable[[], str | None]):
        self.settings = settings
        self.manager = manager
        self.metrics = metrics
        self.region_for = region_for  # the region a document names when the source's ARN names none
        self.host, self.port = settings.host, settings.port
        self.credentials = read_credentials(settings.credentials) if settings.credentials else None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self) -> None:
        self._runner, self.port = await start_site(self.app(), self.host, self.port)
        log.info("control API listening on %s:%d (%s)", self.host, self.port,
                 "SigV4 with api.credentials" if self.credentials else "no credentials: loopback only")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        operation = "unknown"
        try:
            found = match_route(request.method, request.path)
            if found is not None:
                operation = found[0].operation.name
            response = await self._answer(request, found)
        except (ApiError, sigv4.AuthError) as error:
            response = _error(error)
            if response.status >= 500:
                log.error("control API %s: %s", operation, error)
        except Exception as error:  # noqa: BLE001 - the client gets Lambda's ServiceException, the log the rest
            log.exception("control API %s failed: %s", operation, error)
            response = _error(ApiError("ServiceException", "esm could not complete the request; see its log."))
        self.metrics.api_requests.labels(operation, str(response.status)).inc()
        return response

    async def _answer(self, request: web.Request, found: tuple[Route, dict[str, str]] | None) -> web.Response:
        declared = request.content_length
        if declared is not None and declared > MAX_BODY_BYTES:
            raise ApiError("RequestTooLargeException", f"Request must be smaller than {MAX_BODY_BYTES} bytes.",
                           status=413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ApiError("RequestTooLargeException", f"Request must be smaller than {MAX_BODY_BYTES} bytes.",
                           status=413) from None
        if self.credentials is not None:
            url = f"{request.scheme}://{request.host}{request.raw_path}"
            sigv4.verify(request.method, url, request.headers, body, *self.credentials)
        if found is None:
            if allowed_methods(request.path):
                raise ApiError("MethodNotAllowedException", f"{request.method} is not allowed on {request.path}",
                               status=405)
            raise ApiError("UnknownOperationException", f"esm serves the event source mapping and tag operations only; "
                           f"nothing at {request.method} {request.path}", status=404)
        route, uri = found
        try:
            document = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):
            raise ApiError("InvalidParameterValueException", "Could not parse the request body as JSON.") from None
        params = parse(route, uri, request.query, document)
        name = route.operation.name
        status = route.operation.http.get("responseCode", 200)
        if name == "ListEventSourceMappings":
            return self._json(status, self._list(route, params))
        if name == "ListTags":
            return self._json(status, {"Tags": dict(self.manager.tagged(params["Resource"]).settings.get("Tags") or {})})
        if name == "TagResource":
            await self.manager.tag(params["Resource"], tags=params["Tags"])
            return self._json(status, None)
        if name == "UntagResource":
            await self.manager.tag(params["Resource"], remove=params["TagKeys"])
            return self._json(status, None)
        if name == "CreateEventSourceMapping":
            entry = await self.manager.create(params)
        elif name == "GetEventSourceMapping":
            entry = self.manager.get(params["UUID"])
        elif name == "UpdateEventSourceMapping":
            entry = await self.manager.update(params["UUID"], params)
        else:
            entry = await self.manager.delete(params["UUID"])
        return self._json(status, render(route.operation.output_shape, configuration(entry, self.region_for)))

    def _list(self, route: Route, params: dict[str, Any]) -> Any:
        entries = self.manager.list(params.get("FunctionName"), params.get("EventSourceArn"))
        if "Marker" in params:
            after = decode_marker(params["Marker"])
            entries = [e for e in entries if (e.created, e.uuid) > after]
        size = params.get("MaxItems") or DEFAULT_MAX_ITEMS
        page = entries[:size]
        answer: dict[str, Any] = {"EventSourceMappings": [configuration(e, self.region_for) for e in page]}
        if len(entries) > size:
            answer["NextMarker"] = encode_marker(page[-1])
        return render(route.operation.output_shape, answer)

    @staticmethod
    def _json(status: int, body: Any) -> web.Response:
        headers = {"x-amzn-RequestId": os.urandom(16).hex()}
        if body is None:  # 204: no content
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)
