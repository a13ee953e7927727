"""The Lambda-compatible control API: manage event source mappings at run time with the AWS SDKs
and the AWS CLI (`api: {listen, credentials}` in the config).

- `protocol`: routes, request parsing and response shapes from botocore's Lambda model, errors;
- `sigv4`: Signature Version 4 checks with botocore's own signer;
- `manager`: the run-time {UUID: supervisor} set and each mapping's lifecycle (SPEC 0);
- `server`: the HTTP listener.

Mappings made here persist in the mapping store beside the checkpoints
(`esm.checkpoints.mappings`).
"""
