"""Security: connection access shared by Kafka sources, Kafka destinations and schema registries.

`kafka_auth` turns SourceAccessConfigurations (checked before, by `esm.config.kafka_access`) into
an access plan (SASL mechanism, TLS) and builds TLS contexts; `secrets` reads the secrets a plan
names (Secrets Manager or esm's own references). Nothing here is re-exported: import the module.
"""
