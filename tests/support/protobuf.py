"""Protobuf message classes for tests, built from .proto text at run time (no generated code kept
in the tree): what a producer's generated classes are, so confluent-kafka's ProtobufSerializer
writes the bytes real producers write. Also AWS Glue's Protobuf framing, for which no Python
serializer exists: the 18-byte header, then the message's position among the schema's message
types sorted by full name (one varint), then the message."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

import grpc_tools
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from esm.schemas.wire import glue_frame

COMMON_PROTO = """syntax = "proto3";
package shop.common;

message Money {
  string currency = 1;
  int64 units = 2;
}
"""

ORDER_PROTO = """syntax = "proto3";
package shop;

import "google/protobuf/timestamp.proto";
import "shop/common.proto";

enum Status {
  NEW = 0;
  PAID = 1;
  SHIPPED = 2;
}

message Order {
  int64 id = 1;
  Status status = 2;
  shop.common.Money total = 3;
  repeated Line lines = 4;
  map<string, string> tags = 5;
  oneof payment {
    string card = 6;
    bool cash = 7;
  }
  bytes blob = 8;
  google.protobuf.Timestamp placed_at = 9;
  uint64 big = 10;

  message Line {
    string sku = 1;
    int32 quantity = 2;
  }
}

message OrderKey {
  string customer_id = 1;
}
"""


def message_classes(files: dict[str, str]) -> dict[str, Any]:
    """{full message name: class} of every message in `files` (import path -> .proto text)."""
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "w") as out:
                out.write(text)
        output = os.path.join(root, "set.pb")
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"-I{include}",
                        f"--descriptor_set_out={output}", "--include_imports", *files], check=True)
        with open(output, "rb") as data:
            descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(data.read())
    pool = descriptor_pool.DescriptorPool()
    classes: dict[str, Any] = {}
    for proto in descriptor_set.file:
        pool.Add(proto)
    for proto in descriptor_set.file:
        queue = list(pool.FindFileByName(proto.name).message_types_by_name.values())
        while queue:
            descriptor = queue.pop()
            classes[descriptor.full_name] = message_factory.GetMessageClass(descriptor)
            queue.extend(descriptor.nested_types)
    return classes


def shop_classes() -> dict[str, Any]:
    return message_classes({"shop/common.proto": COMMON_PROTO, "shop/order.proto": ORDER_PROTO})


def glue_protobuf(version_id: str, message: Any, *, compress: bool = False) -> bytes:
    """`message` framed as AWS Glue's Protobuf serializer frames it."""
    every: list[str] = []
    queue = list(message.DESCRIPTOR.file.message_types_by_name.values())
    while queue:
        descriptor = queue.pop(0)
        every.append(descriptor.full_name)
        queue.extend(descriptor.nested_types)
    index = sorted(every).index(message.DESCRIPTOR.full_name)
    assert index < 128  # one varint byte
    return glue_frame(version_id, bytes([index]) + message.SerializeToString(), compress=compress)


def sample_order(classes: dict[str, Any], n: int) -> Any:
    order = classes["shop.Order"](id=2**53 + n, status=n % 3, big=2**64 - 1, blob=bytes([n, 255]),
                                  tags={"n": str(n)})
    order.total.currency, order.total.units = "EUR", 100 * n
    order.lines.add(sku=f"s{n}", quantity=n)
    if n % 2:
        order.card = f"card{n}"
    else:
        order.cash = True
    order.placed_at.FromJsonString("2026-01-02T03:04:05Z")
    return order


def confluent_serialized(url: str, messages: list[Any], key: bool = False) -> list[bytes]:
    """Each message as Confluent's ProtobufSerializer writes it for topic "orders" (registering its
    schema and imports in the registry at `url`, as producers do). Blocking: run it in a thread when
    the registry is served by the calling event loop."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    context = SerializationContext("orders", MessageField.KEY if key else MessageField.VALUE)
    with SchemaRegistryClient({"url": url}) as client:
        serializers: dict[type, ProtobufSerializer] = {}
        out = []
        for message in messages:
            serializer = serializers.get(type(message))
            if serializer is None:
                serializer = serializers[type(message)] = ProtobufSerializer(type(message), client)
            out.append(serializer(message, context))
    return out
