"""moto's server as `moto_server` runs it, except that DynamoDB's requests are served one at a time.

moto serves every request on its own thread, and its DynamoDB checks a ConditionExpression and
then writes with no lock between the two: two conditional writes on one item can both succeed
(seen with esm's lease table: two replicas both won a shard with `attribute_not_exists`), which
DynamoDB never allows: a conditional write is atomic on its item, and the lease table's
compare-and-set relies on it. Serving the DynamoDB API (X-Amz-Target `DynamoDB_...`; DynamoDB Streams
is `DynamoDBStreams_...` and not affected) one request at a time restores that guarantee; every
other service is served exactly as moto serves it. Arguments are moto_server's.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication


class DynamoDbOneAtATime:
    """WSGI middleware: a DynamoDB request runs, and its answer is read, under one lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return [b"".join(self.app(environ, start_response))]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("app", "lock"):
            object.__setattr__(self, name, value)
        else:  # moto's main sets `debug` on its application
            setattr(self.app, name, value)


def application(create_backend_app: Callable[..., Any]) -> DynamoDbOneAtATime:
    return DynamoDbOneAtATime(DomainDispatcherApplication(create_backend_app))


if __name__ == "__main__":
    server.DomainDispatcherApplication = application  # the one change to moto_server's main
    server.main(sys.argv[1:])
