"""Protobuf writer schemas, compiled at run time, and the decoder of one framed payload
(behaviour §2, §5; behaviour §9.13 has the choices).

`compile_protobuf(definition, references, framing)` builds a private descriptor pool from what the
registry serves, once per schema (the cache keeps the result):
- `.proto` text (what a Confluent registry answers by default and what AWS Glue stores) is compiled
  by protoc, the reference compiler, from grpcio-tools, run as a child process so its messages can
  be quoted in the error and a compiler crash cannot take the daemon down;
- a base64 serialized `FileDescriptorProto` (what Confluent's serializers register, and what its
  registry answers with `format=serialized`) is read directly.
`references` maps import names to their definitions, already fetched through the registry. Files
under `google/protobuf/` (Timestamp, Duration, Struct, wrappers, Any, ...) come with the protobuf
package and protoc, never from the network.

The payload in front of the message names the message type within the schema file:
- Confluent: the message-index list, zigzag varints, a count then a path through nested types
  (`[1, 0]` is the first type nested in the second top-level type); a lone `0` means `[0]`;
- AWS Glue: one unsigned varint, the position of the type among all the file's message types
  (nested ones included) sorted by full name.
The message is then parsed and rendered as JSON values with protobuf's JSON mapping, keeping the
field names of the `.proto` file (see behaviour §9.13).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import os
import re
import subprocess
import sys
import tempfile
from typing import Any, Callable, Mapping

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError

from esm.config.schema_registry import GLUE
from esm.schemas.errors import DeserializationError, SchemaUnusable

MAIN_FILE = "registry_schema.proto"  # the registry names no file for the schema itself
PROTOC_TIMEOUT = 60.0
MAX_NESTING = 100  # deeper message-index lists are corrupt bytes, not schemas
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


# ---------------------------------------------------------------- the schema file, compiled


def compile_protobuf(definition: str, references: Mapping[str, str] | None = None,
                     framing: str = "confluent") -> Callable[[bytes], Any]:
    """The decoder of payloads written with this schema (raises SchemaUnusable)."""
    files = _file_protos(definition, dict(references or {}))
    pool = descriptor_pool.DescriptorPool()
    try:
        for proto in files:
            pool.Add(proto)
        main = pool.FindFileByName(files[-1].name)
    except (TypeError, KeyError, ValueError) as error:
        raise SchemaUnusable(f"not a usable Protobuf schema: {error}") from None
    top = [main.message_types_by_name[m.name] for m in files[-1].message_type]
    if not top:
        raise SchemaUnusable("the Protobuf schema defines no message type")
    pick = _glue_index(top) if framing == GLUE else _confluent_indexes(top)
    classes: dict[Any, Any] = {}

    def decode(payload: bytes) -> Any:
        descriptor, start = pick(payload)
        message_class = classes.get(descriptor)
        if message_class is None:
            message_class = classes[descriptor] = message_factory.GetMessageClass(descriptor)
        try:
            message = message_class.FromString(payload[start:])
        except DecodeError as error:
            raise DeserializationError(f"not Protobuf data of {descriptor.full_name}: {error}") from None
        if not message.IsInitialized():  # proto2 `required` fields (parsing alone does not check them)
            raise DeserializationError(f"{descriptor.full_name} lacks required field(s) "
                                       f"{', '.join(message.FindInitializationErrors())}")
        try:
            return json_format.MessageToDict(message, preserving_proto_field_name=True, descriptor_pool=pool)
        except (TypeError, ValueError, KeyError) as error:  # an Any of an unknown type, a Timestamp out of range
            raise DeserializationError(f"{descriptor.full_name} has no JSON form: {error}") from None

    return decode


def _file_protos(definition: str, references: dict[str, str]) -> list[descriptor_pb2.FileDescriptorProto]:
    """Every file the schema needs, dependencies first, the schema's own file last."""
    if _serialized(definition):
        return _serialized_files(definition, references)
    return _compiled_files(definition, references)


def _serialized(definition: str) -> bool:
    # .proto text always has a ';' or '{'; base64 never does.
    return bool(definition.strip()) and _BASE64.fullmatch(definition) is not None


def _from_base64(text: str, what: str) -> descriptor_pb2.FileDescriptorProto:
    try:
        return descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(text, validate=False))
    except (binascii.Error, DecodeError, ValueError) as error:
        raise SchemaUnusable(f"{what} is neither .proto text nor a serialized FileDescriptorProto: {error}") from None


def _serialized_files(definition: str, references: dict[str, str]) -> list[descriptor_pb2.FileDescriptorProto]:
    main = _from_base64(definition, "the schema")
    if not main.name:
        main.name = MAIN_FILE
    known: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for name, text in references.items():
        if not _serialized(text):
            raise SchemaUnusable(f"reference {name} is .proto text while the schema is a serialized "
                                 "descriptor: esm compiles one form or the other")
        proto = _from_base64(text, f"reference {name}")
        proto.name = name  # imports name the reference, whatever name the producer compiled it under
        known[name] = proto
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    placed: set[str] = set()

    def place(proto: descriptor_pb2.FileDescriptorProto, path: tuple[str, ...]) -> None:
        for dependency in proto.dependency:
            if dependency in placed:
                continue
            if dependency in path:
                raise SchemaUnusable(f"imports form a cycle: {' -> '.join(path + (dependency,))}")
            found = known.get(dependency) or _well_known(dependency)
            if found is None:
                raise SchemaUnusable(f"{proto.name} imports {dependency}, which is neither a reference the "
                                     "registry gave nor a google/protobuf well-known type")
            place(found, path + (dependency,))
        placed.add(proto.name)
        ordered.append(proto)

    place(main, (main.name,))
    return ordered


def _well_known(name: str) -> descriptor_pb2.FileDescriptorProto | None:
    """A google/protobuf/*.proto file from the protobuf package itself (no network)."""
    if not name.startswith("google/protobuf/"):
        return None
    module = "google.protobuf." + name.removeprefix("google/protobuf/").removesuffix(".proto").replace("/", ".") + "_pb2"
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return None
    return descriptor_pb2.FileDescriptorProto.FromString(imported.DESCRIPTOR.serialized_pb)


def _include_dir() -> str:
    import grpc_tools  # protoc, and the google/protobuf/*.proto files it ships

    return os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")


def _compiled_files(definition: str, references: dict[str, str]) -> list[descriptor_pb2.FileDescriptorProto]:
    with tempfile.TemporaryDirectory(prefix="esm-proto-") as root:
        for name, text in {**references, MAIN_FILE: definition}.items():
            if _serialized(text):
                raise SchemaUnusable(f"reference {name} is a serialized descriptor while the schema is "
                                     ".proto text: esm compiles one form or the other")
            path = os.path.normpath(os.path.join(root, name))
            if not path.startswith(root + os.sep):
                raise SchemaUnusable(f"reference name {name!r} is not a relative .proto path")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
        descriptor_set = os.path.join(root, "descriptor-set.pb")
        command = [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={root}", f"--proto_path={_include_dir()}",
                   f"--descriptor_set_out={descriptor_set}", "--include_imports", MAIN_FILE]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PROTOC_TIMEOUT, cwd=root)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SchemaUnusable(f"protoc could not run: {error}") from None
        if done.returncode != 0:
            raise SchemaUnusable(f"protoc rejects the schema: {_problems(done.stderr or done.stdout, root) or done.returncode}")
        with open(descriptor_set, "rb") as data:
            files = list(descriptor_pb2.FileDescriptorSet.FromString(data.read()).file)
    return files  # --include_imports lists dependencies before their dependents


def _problems(output: str, root: str) -> str:
    """protoc's error lines, without its logging library's banner and warnings."""
    lines = (line.replace(root + os.sep, "") for line in output.splitlines())
    return "; ".join(line for line in lines if line and not _LOG_LINE.match(line))


_LOG_LINE = re.compile(r"WARNING: All log messages|[IWE]\d{4} ")


# ---------------------------------------------------------------- which message type a payload holds


def _varint(data: bytes, start: int) -> tuple[int, int]:
    """(value, next position) of the unsigned varint at `start`."""
    value = shift = 0
    position = start
    while True:
        if position >= len(data) or shift > 63:
            raise DeserializationError("the message index is cut short or not a varint")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7


def _zigzag(data: bytes, start: int) -> tuple[int, int]:
    value, position = _varint(data, start)
    return (value >> 1) ^ -(value & 1), position


def _confluent_indexes(top: list[Any]) -> Callable[[bytes], tuple[Any, int]]:
    def pick(payload: bytes) -> tuple[Any, int]:
        if payload[:1] == b"\x00":  # the shortcut for [0], the first top-level type
            return top[0], 1
        count, position = _zigzag(payload, 0)
        if count < 0 or count > MAX_NESTING:
            raise DeserializationError(f"message index list of {count} entries (corrupt, or not Confluent Protobuf)")
        path: list[int] = []
        choices, descriptor = top, None
        for _ in range(count):
            index, position = _zigzag(payload, position)
            path.append(index)
            if not 0 <= index < len(choices):
                where = "top-level message types" if descriptor is None else f"types nested in {descriptor.full_name}"
                raise DeserializationError(f"message index {path} is out of range: the schema has "
                                           f"{len(choices)} {where}")
            descriptor = choices[index]
            choices = list(descriptor.nested_types)
        return descriptor, position

    return pick


def _glue_index(top: list[Any]) -> Callable[[bytes], tuple[Any, int]]:
    every: list[Any] = []
    queue = list(top)
    while queue:  # level by level, as AWS Glue's serializer numbers them, then sorted by full name
        descriptor = queue.pop(0)
        every.append(descriptor)
        queue.extend(descriptor.nested_types)
    every.sort(key=lambda d: d.full_name)

    def pick(payload: bytes) -> tuple[Any, int]:
        index, position = _varint(payload, 0)
        if index >= len(every):
            raise DeserializationError(f"message index {index} is out of range: the schema has "
                                       f"{len(every)} message types")
        return every[index], position

    return pick
