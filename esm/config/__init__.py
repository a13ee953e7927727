"""Configuration: the room that turns a YAML file (or a control-API request) into typed settings.

`loading` reads and checks a config file and builds the frozen `settings` objects everything else
reads; `api_shape` checks requests against botocore's CreateEventSourceMapping shape; `rules` holds
the per-source mapping rules Lambda applies; `kafka_access` the Kafka connection-security
entries and `esm:` Kafka options; `references` checks and reads secret references
(`{env: VARIABLE}`, `{file: PATH}`). Callers import the module they need
(`esm.config.loading.load_config`): this package re-exports nothing, so importing one part never
loads the others.
"""
