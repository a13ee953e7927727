"""The Kafka event source (self-managed Kafka and Amazon MSK), one job per module.

`source` (KafkaSource: the Source the engine runs), `group` (the consumer group, the rebalance
listener, the poll loop and per-partition buffers with an explicit partition state), `commits`
(offset tracking, the committer, lag), `decoding` (the schema registry step), `records` (Lambda's
Kafka payload and on-failure documents: KafkaFormat), `cluster` and `msk` (reaching a cluster:
SASL/TLS, secrets, Amazon MSK brokers and IAM tokens), `tuning` (timings and sizes).
"""
