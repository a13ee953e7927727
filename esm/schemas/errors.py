"""Why a schema or a payload cannot be decoded: shared by the formats and the registry clients."""


class SchemaUnusable(ValueError):
    """The registry's schema cannot be used to decode (not parseable, or a format esm cannot read)."""


class DeserializationError(ValueError):
    """The payload does not decode with its writer schema."""
