"""A FAKE Confluent Schema Registry for tests: no real one installs here (Confluent's is not on Maven
Central, Karapace is not on PyPI; docs/design.md), so this serves the slice of its REST API that esm
and the tests use, with the real API's shapes:

- `GET /schemas/ids/{id}` -> `{"schema": text}` plus `"schemaType"` for JSON/PROTOBUF (AVRO omits it)
  and `"references"` when the schema has some, or 404 `{"error_code": 40403, "message": "Schema {id}
  not found"}`;
- `GET /subjects/{subject}/versions/{version|latest}` -> `{"subject", "version", "id", "schema", ...}`,
  or 404 (40401 subject / 40402 version not found);
- `POST /subjects/{subject}/versions` with `{"schema": text, "schemaType"?, "references"?}` -> `{"id": n}`
  (the same id for the same schema, as the real registry does), and `POST /subjects/{subject}` (is this
  schema registered under the subject?) -> `{"subject", "id", "version", "schema"}` or 404 40403;
- a Protobuf schema registered as a base64 serialized FileDescriptorProto (as confluent-kafka's
  ProtobufSerializer registers it) is answered as `.proto` text, as the real registry answers by
  default; `proto_text` renders the slice of the language the tests use (messages, nested types,
  enums, maps, oneofs, optional and repeated fields, imports);
- HTTP basic auth when `users` is given (401 `{"error_code": 401, ...}` otherwise);
- `down = True` answers every request with 503 (a registry outage); `requests` counts
  `GET /schemas/ids/{id}` calls per id, so tests can check lookups are batched and cached;
- HTTPS when given an `ssl.SSLContext` (one that requires client certificates serves mTLS).

`FakeConfluentRegistry` runs in the test's event loop on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ssl
from collections import Counter
from typing import Any, AsyncIterator

from aiohttp import web
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pb2 import FieldDescriptorProto

from tests.support.fake_server import LoopbackApi


class FakeConfluentRegistry(LoopbackApi):
    """A fake of the Confluent Schema Registry REST API (see the module docstring)."""

    def __init__(self, users: dict[str, str] | None = None, first_id: int = 1,
                 tls: ssl.SSLContext | None = None):
        self.users = users or {}
        self.tls = tls
        self.schemas: dict[int, dict[str, Any]] = {}
        self.next_id = first_id
        self.down = False
        self.requests: Counter[str] = Counter()
        self.subjects: dict[str, list[int]] = {}  # subject -> schema id of each version, in order

    def register(self, schema: str, schema_type: str = "AVRO", subject: str = "test-value",
                 references: list[dict[str, Any]] | None = None) -> int:
        """Store a schema directly (as a producer's serializer would via the API); returns its id.
        `references`: `[{"name": import path, "subject", "version"}]`, as the API takes them."""
        if schema_type == "PROTOBUF" and _serialized(schema):
            schema = proto_text(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(schema)))
        references = list(references or [])
        schema_id = next((i for i, e in self.schemas.items() if (e["schema"], e["schemaType"], e["references"])
                          == (schema, schema_type, references)), None)
        if schema_id is None:
            schema_id = self.next_id
            self.next_id += 1
            self.schemas[schema_id] = {"schema": schema, "schemaType": schema_type, "subject": subject,
                                       "references": references}
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    def version_of(self, subject: str, schema_id: int) -> int:
        return self.subjects[subject].index(schema_id) + 1

    def _answer(self, schema_id: int) -> dict[str, Any]:
        entry = self.schemas[schema_id]
        body: dict[str, Any] = {"schema": entry["schema"]}
        if entry["schemaType"] != "AVRO":
            body["schemaType"] = entry["schemaType"]
        if entry["references"]:
            body["references"] = entry["references"]
        return body

    # -- the HTTP side --------------------------------------------------------------------------
    def _refused(self, request: web.Request) -> web.Response | None:
        if self.down:
            return web.json_response({"error_code": 50003, "message": "fake registry is down"}, status=503)
        if not self.users:
            return None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if self.users.get(user) == password:
                    return None
        return web.json_response({"error_code": 401, "message": "Unauthorized"}, status=401)

    async def _get_by_id(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        raw = request.match_info["id"]
        self.requests[raw] += 1
        entry = self.schemas.get(int(raw)) if raw.isdigit() else None
        if entry is None:
            return web.json_response({"error_code": 40403, "message": f"Schema {raw} not found"}, status=404)
        return _json(self._answer(int(raw)))

    async def _get_version(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        subject, raw = request.match_info["subject"], request.match_info["version"]
        self.requests[f"{subject}/{raw}"] += 1
        versions = self.subjects.get(subject)
        if not versions:
            return _json({"error_code": 40401, "message": f"Subject '{subject}' not found."}, 404)
        version = len(versions) if raw == "latest" else int(raw) if raw.isdigit() else 0
        if not 1 <= version <= len(versions):
            return _json({"error_code": 40402, "message": f"Version {raw} not found."}, 404)
        schema_id = versions[version - 1]
        return _json({"subject": subject, "version": version, "id": schema_id, **self._answer(schema_id)})

    async def _post_version(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        schema_id = self.register(body["schema"], body.get("schemaType", "AVRO"), request.match_info["subject"],
                                  body.get("references"))
        return _json({"id": schema_id})

    async def _post_lookup(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        subject, body = request.match_info["subject"], await request.json()
        schema, schema_type = body["schema"], body.get("schemaType", "AVRO")
        if schema_type == "PROTOBUF" and _serialized(schema):
            schema = proto_text(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(schema)))
        for schema_id in self.subjects.get(subject, []):
            entry = self.schemas[schema_id]
            if (entry["schema"], entry["schemaType"]) == (schema, schema_type):
                return _json({"subject": subject, "id": schema_id, "version": self.version_of(subject, schema_id),
                              **self._answer(schema_id)})
        return _json({"error_code": 40403, "message": "Schema not found"}, 404)

    def routes(self, app: web.Application) -> None:
        # Subjects may hold '/' (a reference's subject is its import path, such as shop/common.proto).
        app.router.add_get("/schemas/ids/{id}", self._get_by_id)
        app.router.add_get("/subjects/{subject:.+}/versions/{version}", self._get_version)
        app.router.add_post("/subjects/{subject:.+}/versions", self._post_version)
        app.router.add_post("/subjects/{subject:.+}", self._post_lookup)


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, content_type="application/vnd.schemaregistry.v1+json")


def _serialized(schema: str) -> bool:
    return ";" not in schema and "{" not in schema


# ---------------------------------------------------------------- descriptors as .proto text

_TYPE_NAMES = {
    FieldDescriptorProto.TYPE_DOUBLE: "double", FieldDescriptorProto.TYPE_FLOAT: "float",
    FieldDescriptorProto.TYPE_INT64: "int64", FieldDescriptorProto.TYPE_UINT64: "uint64",
    FieldDescriptorProto.TYPE_INT32: "int32", FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    FieldDescriptorProto.TYPE_FIXED32: "fixed32", FieldDescriptorProto.TYPE_BOOL: "bool",
    FieldDescriptorProto.TYPE_STRING: "string", FieldDescriptorProto.TYPE_BYTES: "bytes",
    FieldDescriptorProto.TYPE_UINT32: "uint32", FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    FieldDescriptorProto.TYPE_SFIXED64: "sfixed64", FieldDescriptorProto.TYPE_SINT32: "sint32",
    FieldDescriptorProto.TYPE_SINT64: "sint64",
}


def proto_text(file: descriptor_pb2.FileDescriptorProto) -> str:
    """A FileDescriptorProto as .proto source (type names fully qualified, as protoc accepts them)."""
    syntax = file.syntax or "proto2"
    lines = [f'syntax = "{syntax}";']
    if file.package:
        lines.append(f"package {file.package};")
    lines += [f'import "{name}";' for name in file.dependency]
    for message in file.message_type:
        lines += _message_text(message, "", syntax)
    for enum in file.enum_type:
        lines += _enum_text(enum, "")
    return "\n".join(lines) + "\n"


def _field_type(field: FieldDescriptorProto) -> str:
    return field.type_name or _TYPE_NAMES[field.type]


def _field_text(field: FieldDescriptorProto, entries: dict[str, Any], syntax: str, in_oneof: bool) -> str:
    entry = entries.get(field.type_name.rsplit(".", 1)[-1]) if field.type_name else None
    if entry is not None and field.label == FieldDescriptorProto.LABEL_REPEATED:
        key, value = entry.field
        return f"map<{_field_type(key)}, {_field_type(value)}> {field.name} = {field.number};"
    label = ""
    if field.label == FieldDescriptorProto.LABEL_REPEATED:
        label = "repeated "
    elif field.proto3_optional or (syntax == "proto2" and not in_oneof):
        label = "required " if field.label == FieldDescriptorProto.LABEL_REQUIRED else "optional "
    return f"{label}{_field_type(field)} {field.name} = {field.number};"


def _message_text(message: Any, indent: str, syntax: str) -> list[str]:
    inner = indent + "  "
    entries = {n.name: n for n in message.nested_type if n.options.map_entry}
    lines = [f"{indent}message {message.name} {{"]
    oneofs: dict[int, list[FieldDescriptorProto]] = {}
    for field in message.field:
        if field.HasField("oneof_index") and not field.proto3_optional:
            oneofs.setdefault(field.oneof_index, []).append(field)
        else:
            lines.append(inner + _field_text(field, entries, syntax, False))
    for index, fields in sorted(oneofs.items()):
        lines.append(f"{inner}oneof {message.oneof_decl[index].name} {{")
        lines += [inner + "  " + _field_text(f, entries, syntax, True) for f in fields]
        lines.append(inner + "}")
    for nested in message.nested_type:
        if not nested.options.map_entry:
            lines += _message_text(nested, inner, syntax)
    for enum in message.enum_type:
        lines += _enum_text(enum, inner)
    return lines + [indent + "}"]


def _enum_text(enum: Any, indent: str) -> list[str]:
    return ([f"{indent}enum {enum.name} {{"] + [f"{indent}  {v.name} = {v.number};" for v in enum.value]
            + [indent + "}"])


@contextlib.asynccontextmanager
async def fake_confluent_registry(**kwargs: Any) -> AsyncIterator[FakeConfluentRegistry]:
    registry = await FakeConfluentRegistry(**kwargs).start()
    try:
        yield registry
    finally:
        await registry.stop()
