"""A client of the AWS Glue Schema Registry, over aiobotocore (esm.aws.AwsClients).

A Glue-framed record names its writer schema by schema version UUID: `GetSchemaVersion
(SchemaVersionId=...)` answers its `SchemaDefinition` and `DataFormat` (AVRO, JSON, PROTOBUF).
`EntityNotFoundException`, a version that is not AVAILABLE, or one that belongs to another registry
than `SchemaRegistryURI` names (one registry per mapping) is `SchemaNotFound`; any other error
(no connection, throttling, access denied) is `RegistryUnavailable`.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from esm.aws import AwsClients
from esm.schemas.registry import RegistrySchema, RegistryUnavailable, SchemaNotFound

NOT_FOUND_CODES = {"EntityNotFoundException", "InvalidInputException"}


class GlueRegistry:
    kind = "glue"

    def __init__(self, clients: AwsClients, *, region: str | None, registry_name: str | None):
        self.clients = clients
        self.region = region
        self.registry_name = registry_name
        self._client: Any = None
        self._context: Any = None

    async def _open(self) -> Any:
        if self._client is None:
            self._context = self.clients.client("glue", region=self.region)
            self._client = await self._context.__aenter__()
        return self._client

    async def fetch(self, schema_id: str) -> RegistrySchema:
        try:
            client = await self._open()
            answer = await client.get_schema_version(SchemaVersionId=schema_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in NOT_FOUND_CODES:
                raise SchemaNotFound(f"schema version {schema_id} not found in AWS Glue "
                                     f"({error.response.get('Error', {}).get('Message', code)})") from error
            raise RegistryUnavailable(f"AWS Glue GetSchemaVersion {schema_id} failed: {error}") from error
        except (BotoCoreError, OSError) as error:
            raise RegistryUnavailable(f"AWS Glue GetSchemaVersion {schema_id} failed: {error!r}") from error
        status = answer.get("Status", "AVAILABLE")
        if status != "AVAILABLE":
            raise SchemaNotFound(f"schema version {schema_id} is {status}, not AVAILABLE")
        # SchemaArn is arn:aws:glue:<region>:<account>:schema/<registry>/<schema>.
        schema_arn = str(answer.get("SchemaArn") or "")
        registry = schema_arn.split(":schema/", 1)[1].split("/", 1)[0] if ":schema/" in schema_arn else None
        if self.registry_name and registry and registry != self.registry_name:
            raise SchemaNotFound(f"schema version {schema_id} belongs to registry {registry}, "
                                 f"not {self.registry_name}")
        return RegistrySchema(schema_id, str(answer.get("DataFormat") or "AVRO").upper(),
                              str(answer.get("SchemaDefinition") or ""))

    async def close(self) -> None:
        context, self._context, self._client = self._context, None, None
        if context is not None:
            await context.__aexit__(None, None, None)
