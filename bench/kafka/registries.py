"""bench/kafka/registries: records per second through esm when a schema registry decodes every record
(Avro, JSON Schema, Protobuf, EventRecordFormat JSON), against the same path with no registry, in
one run.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.kafka.registries [--records 50000] [--partitions 4] [--batch-size 100] [--repeat 2]

Each path reads its own backlog (a new topic, TRIM_HORIZON) of the same order, about 250 bytes as
JSON: an int64 id, an enum status, a double amount, a 200-character note. The "none" topic holds
that JSON as produced with no registry; the others hold it encoded with the writer schema and
Confluent's framing (Protobuf with its message-index byte), registered in the fake Confluent
registry of the tests (each schema is fetched once, then cached, so the fake costs nothing per
record). esm runs one mapping (BatchSize --batch-size, window 0) invoking an in-process no-op
handler, timed until its committed-events counter reaches the backlog; the paths take turns, and
the best of --repeat runs counts. Prints a table and writes JSON (bench/results/kafka-registries.json
unless --out). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from pathlib import Path
from typing import Any

import fastavro
import orjson
from aiokafka import AIOKafkaProducer

from bench.kafka.run import ROOT, delete_topic, new_topic, servers, through_esm
from esm.daemon import tune_garbage_collector
from esm.schemas.wire import confluent_frame
from tests.support.confluent_fake import fake_confluent_registry
from tests.support.protobuf import message_classes

AVRO_SCHEMA = {"type": "record", "name": "Order", "namespace": "bench", "fields": [
    {"name": "id", "type": "long"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
    {"name": "amount", "type": "double"},
    {"name": "note", "type": "string"}]}
JSON_SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
               "required": ["id", "status", "amount", "note"], "properties": {
                   "id": {"type": "integer"}, "status": {"enum": ["NEW", "PAID", "SHIPPED"]},
                   "amount": {"type": "number"}, "note": {"type": "string"}}}
PROTO = """syntax = "proto3";
package bench;
enum Status { NEW = 0; PAID = 1; SHIPPED = 2; }
message Order { int64 id = 1; Status status = 2; double amount = 3; string note = 4; }
"""
PATHS = ("none", "avro", "json_schema", "protobuf")


def order(n: int) -> dict[str, Any]:
    return {"id": n, "status": ("NEW", "PAID", "SHIPPED")[n % 3], "amount": n + 0.25, "note": "x" * 200}


def encoders(registry: Any) -> dict[str, Any]:
    """path -> (record n -> the bytes a producer writes for it)."""
    avro_id = registry.register(json.dumps(AVRO_SCHEMA))
    json_id = registry.register(json.dumps(JSON_SCHEMA), "JSON")
    proto_id = registry.register(PROTO, "PROTOBUF")
    parsed = fastavro.parse_schema(AVRO_SCHEMA)
    message = message_classes({"order.proto": PROTO})["bench.Order"]

    def avro(n: int) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, order(n))
        return confluent_frame(avro_id, out.getvalue())

    return {"none": lambda n: orjson.dumps(order(n)),
            "avro": avro,
            "json_schema": lambda n: confluent_frame(json_id, orjson.dumps(order(n))),
            "protobuf": lambda n: confluent_frame(proto_id, b"\x00" + message(**order(n)).SerializeToString())}


async def fill(topic: str, count: int, partitions: int, encode: Any) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers(), linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, encode(i), partition=i % partitions) for i in range(count)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tune_garbage_collector()  # as the daemon does; the same for every path
    topics: dict[str, str] = {}
    async with fake_confluent_registry() as registry:
        try:
            for path, encode in encoders(registry).items():
                topics[path] = await new_topic(args.partitions)
                await fill(topics[path], args.records, args.partitions, encode)
            config = {"SchemaRegistryURI": registry.url, "EventRecordFormat": "JSON",
                      "SchemaValidationConfigs": [{"Attribute": "VALUE"}]}
            runs: dict[str, list[float]] = {path: [] for path in PATHS}
            for _ in range(args.repeat):  # interleaved: a busy moment of the machine does not hit one path only
                for path in PATHS:
                    runs[path].append(await through_esm(topics[path], args.records, args.batch_size,
                                                        None if path == "none" else config))
        finally:
            for topic in topics.values():
                await delete_topic(topic)
    best = {path: max(rates) for path, rates in runs.items()}
    return {"records": args.records, "partitions": args.partitions, "batch_size": args.batch_size,
            "records_per_s": {path: round(rate) for path, rate in best.items()},
            "vs_no_registry": {path: round(rate / best["none"], 3) for path, rate in best.items()},
            "runs_records_per_s": {path: [round(r) for r in rates] for path, rates in runs.items()}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each path (the best counts)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "kafka-registries.json"))
    args = parser.parse_args()
    result = asyncio.run(main(args))
    print(f"\nKafka through esm, {result['partitions']} partitions, {result['records']} records per path, "
          f"BatchSize {result['batch_size']}, EventRecordFormat JSON")
    print(f"{'value':<40}{'records/s':>10}{'vs none':>9}")
    names = {"none": "no registry (JSON as produced)", "avro": "Avro (Confluent)",
             "json_schema": "JSON Schema (Confluent)", "protobuf": "Protobuf (Confluent)"}
    for path in PATHS:
        print(f"{names[path]:<40}{result['records_per_s'][path]:>10}{result['vs_no_registry'][path]:>9.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
