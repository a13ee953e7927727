"""Signature Version 4 checks for the control API, done by botocore's own signer.

The incoming request is rebuilt as a botocore AWSRequest holding exactly the headers the client
says it signed, its raw path and query, its body and its `X-Amz-Date`; botocore's SigV4Auth
computes the signature that request must carry under our secret, and `hmac.compare_digest`
compares the two. The signing region is the one the client put in its credential scope (any
region is fine: esm is not regional), the service must be `lambda`. A failure raises `AuthError`
with the error type AWS answers with; no message ever holds the secret or a signature.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Mapping

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "lambda"
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)  # what AWS allows
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<headers>[a-z0-9\-;]+),\s*Signature=(?P<signature>[0-9a-f]{64})$")


@dataclass(frozen=True)
class AuthError(Exception):
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def verify(method: str, url: str, headers: Mapping[str, str], body: bytes, access_key_id: str,
           secret_access_key: str, now: datetime.datetime | None = None) -> None:
    """Raise AuthError unless the request carries a valid SigV4 signature by our access key.

    `url` is the request's `http://host/raw-path?raw-query` exactly as it arrived; `headers` is
    case-insensitive (aiohttp's CIMultiDict)."""
    authorization = headers.get("Authorization")
    if not authorization:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = AUTHORIZATION.match(authorization.strip())
    if match is None:
        raise AuthError("IncompleteSignatureException",
                        "Authorization header requires AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature")
    if not hmac.compare_digest(match["key"].encode(), access_key_id.encode()):
        raise AuthError("UnrecognizedClientException", "The security token included in the request is invalid.")
    if match["service"] != SERVICE:
        raise AuthError("InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'.")
    stamp = headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise AuthError("IncompleteSignatureException", "X-Amz-Date must be a time such as 20260101T000000Z") from None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise AuthError("InvalidSignatureException",
                        f"Signature expired: {stamp} is not within 15 minutes of the server's time "
                        f"{now.strftime(SIGV4_TIMESTAMP)}.")
    if stamp[:8] != match["date"]:
        raise AuthError("InvalidSignatureException", "Credential date does not match X-Amz-Date.")
    signed = match["headers"].split(";")
    if "host" not in signed:
        raise AuthError("InvalidSignatureException", "SignedHeaders must include host.")
    missing = [name for name in signed if name not in headers]
    if missing:
        raise AuthError("InvalidSignatureException", f"Signed header(s) missing from the request: {', '.join(missing)}")
    claimed = headers.get("X-Amz-Content-SHA256")
    if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
        # A signature over a claimed body hash proves nothing about a different body.
        raise AuthError("InvalidSignatureException", "X-Amz-Content-SHA256 does not match the request body.")
    rebuilt = AWSRequest(method=method, url=url, headers={name: headers[name] for name in signed}, data=body)
    rebuilt.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(access_key_id, secret_access_key), SERVICE, match["region"])
    expected = signer.signature(signer.string_to_sign(rebuilt, signer.canonical_request(rebuilt)), rebuilt)
    if not hmac.compare_digest(expected.encode(), match["signature"].encode()):
        raise AuthError("InvalidSignatureException",
                        "The request signature we calculated does not match the signature you provided. "
                        "Check your AWS Secret Access Key and signing method. "
                        "Consult the service documentation for details.")
