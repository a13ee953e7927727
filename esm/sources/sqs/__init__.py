"""The SQS event source on the shared engine (esm.engine.queue_mapping runs it): `source` (the
queue: connect, receive, settle), `records` (Lambda's SQS records and their RecordFormat),
`acks` (deletes and visibility changes in chunks of 10)."""
