"""The Python peer for bench/kafka: quixstreams' counting consumer, run in a process of its own.

    python -m bench.kafka.quix --servers HOST:PORT --topic T --records N

An `Application` in a fresh consumer group reads the topic from the earliest offset through a
StreamingDataFrame whose only step counts each record (values as raw bytes: nothing decoded, no
Lambda event built), committing as quixstreams does by default (every `commit_interval`). It prints
one JSON line, {"records_per_s": ..., "cpu_records_per_s": ...}, timed (and its CPU time counted) from
the first record to the N-th; or
{"missing": "..."} when quixstreams is not installed (it is no dependency of esm: the `bench`
extra installs it). A separate process, because quixstreams blocks its thread in its own poll loop.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, required=True)
    args = parser.parse_args()
    try:
        from quixstreams import Application
    except ImportError as error:
        print(json.dumps({"missing": f"quixstreams is not installed ({error.name})"}))
        return
    seen = {"count": 0, "start": 0.0, "end": 0.0, "cpu_start": 0.0, "cpu_end": 0.0}
    with tempfile.TemporaryDirectory() as state:
        app = Application(broker_address=args.servers, consumer_group=f"quix-{uuid.uuid4().hex[:8]}",
                          auto_offset_reset="earliest", state_dir=state, loglevel=logging.WARNING,
                          auto_create_topics=False)
        topic = app.topic(args.topic, value_deserializer="bytes")

        def count(_value: bytes) -> None:
            if not seen["count"]:
                seen["start"], seen["cpu_start"] = time.perf_counter(), time.process_time()
            seen["count"] += 1
            if seen["count"] >= args.records:
                seen["end"], seen["cpu_end"] = time.perf_counter(), time.process_time()
                app.stop()

        app.dataframe(topic).update(count)
        app.run()
    print(json.dumps({"records_per_s": args.records / max(seen["end"] - seen["start"], 1e-9),
                      "cpu_records_per_s": args.records / max(seen["cpu_end"] - seen["cpu_start"], 1e-9)}))


if __name__ == "__main__":
    main()
