"""The Lambda-compatible control API: manage event source mappings at run time with the AWS SDKs
and the AWS CLI (`api: {listen, credentials}` in the config).

- `protocol`: routes, request parsing and response shapes from botocore's Lambda model, errors;
- `sigv4`: Signature Version 4 checks with botocore's own signer;
- `manager`: the API's operations on mappings: what may change, stored in the mapping store;
- `entry`: one mapping as the API sees it; `lifecycle`: the run-time {UUID: entry} set and each
  mapping's supervisor through its states (behaviour §0);
- `replica_sync`: what the store holds, applied at start-up and as other replicas change it;
- `rendering`: the documents the API answers (EventSourceMappingConfiguration, list markers);
- `server`: the HTTP listener.

Mappings made here persist in the mapping store beside the checkpoints
(`esm.checkpoints.mappings`).
"""
