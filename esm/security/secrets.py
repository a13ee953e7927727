"""The secrets SourceAccessConfigurations name: from AWS Secrets Manager, or from `esm.secrets`.

A URI that `esm.secrets` lists is read from the environment or files (outside AWS); any other is
a Secrets Manager secret (ARN or name), read with GetSecretValue in the ARN's region. Either way
the result is the secret's JSON object, checked for the fields its Type needs
(`esm.config.kafka_access.SECRET_FIELDS`). Every failure is a `SourceUnavailable` naming the
secret, its Type and what is wrong; no message ever carries a secret's value.

Two libraries would log secrets at DEBUG: botocore dumps response bodies (GetSecretValue's holds
the secret) and aiokafka dumps SASL authenticate requests (SASL/PLAIN's holds the password). The
command line keeps both at WARNING, but an embedding program may not, so `SecretSource` also puts
a filter on those two loggers that drops exactly those records.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Mapping

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from esm.arns import parse_arn
from esm.aws import AwsClients
from esm.config.kafka_access import SECRET_FIELDS
from esm.config.references import ReferenceUnreadable, read_reference
from esm.errors import SourceUnavailable


class _DropSecretRecords(logging.Filter):
    """Drops the DEBUG records of botocore and aiokafka that would carry a secret."""

    MARKERS = ("SecretString", "SecretBinary", "sasl_auth_bytes")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            return True
        message = record.getMessage()
        return not any(marker in message for marker in self.MARKERS)


_DROP_SECRET_RECORDS = _DropSecretRecords()
_LEAKY_LOGGERS = ("botocore.parsers", "aiokafka.conn")


def quiet_secret_logging() -> None:
    """Install the filter (once) on the loggers that would print secrets at DEBUG."""
    for name in _LEAKY_LOGGERS:
        logger = logging.getLogger(name)
        if _DROP_SECRET_RECORDS not in logger.filters:
            logger.addFilter(_DROP_SECRET_RECORDS)


class SecretSource:
    """Reads secrets for one mapping; `overrides` is the mapping's normalized `esm.secrets`."""

    def __init__(self, clients: AwsClients, overrides: Mapping[str, Any] | None = None):
        self.clients = clients
        self.overrides = overrides or {}
        quiet_secret_logging()

    async def read(self, uri: str, kind: str) -> dict[str, str]:
        """The fields of secret `uri` that a `kind` (SourceAccessConfigurations Type) uses."""
        where = f"secret {uri} ({kind})"
        if uri in self.overrides:
            document = _local(self.overrides[uri], where)
        else:
            document = _parse(await self._secrets_manager(uri, where), where)
        required, optional = SECRET_FIELDS[kind]
        missing = [name for name in required if not (isinstance(document.get(name), str) and document[name])]
        if missing:
            raise SourceUnavailable(f"{where} has no {', '.join(missing)} (a {kind} secret needs "
                                    f"{', '.join(required)})")
        return {name: document[name] for name in required + optional if isinstance(document.get(name), str)}

    async def _secrets_manager(self, uri: str, where: str) -> str:
        arn = parse_arn(uri)
        try:
            async with self.clients.client("secretsmanager", arn.region if arn else None) as client:
                answer = await client.get_secret_value(SecretId=uri)
        except ClientError as error:
            info = error.response.get("Error", {})
            raise SourceUnavailable(f"{where} cannot be read from Secrets Manager: {info.get('Code')}: "
                                    f"{info.get('Message')}") from None
        except (BotoCoreError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            raise SourceUnavailable(f"{where}: Secrets Manager is not reachable: {error}") from None
        if "SecretString" in answer:
            return str(answer["SecretString"])
        try:
            return bytes(answer.get("SecretBinary") or b"").decode("utf-8")
        except UnicodeDecodeError:
            raise SourceUnavailable(f"{where}: the binary secret is not UTF-8 JSON") from None


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        # Never quote the text: it is the secret.
        raise SourceUnavailable(f"{where} is not a JSON object (Lambda's secrets are JSON such as "
                                '{"username": ..., "password": ...})')
    return document


def _local(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    if "whole" in spec:
        return _parse(_dereference(spec["whole"], where), where)
    return {name: _dereference(ref, f"{where} field {name}") for name, ref in spec["fields"].items()}


def _dereference(ref: Mapping[str, str], where: str) -> str:
    try:
        return read_reference(ref, note=" (esm.secrets)")
    except ReferenceUnreadable as error:
        raise SourceUnavailable(f"{where}: {error}") from None
