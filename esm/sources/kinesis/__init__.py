"""The Kinesis event source on the shared engine: `source` (shards as units, checkpoints),
`reader` (GetRecords polling and SubscribeToShard), `records` (the records and their format),
`efo` (botocore tolerance for kinesis-mock's event streams). Lineage and leases are shared with
DynamoDB Streams in esm.sources.shards."""
