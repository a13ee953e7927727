"""The DynamoDB Streams event source on the shared engine: `source` (shards as units, checkpoints),
`reader` (GetShardIterator and GetRecords on one shard), `records` (the records as Lambda sends them,
and their format). Lineage and leases are shared with Kinesis in esm.sources.shards."""
