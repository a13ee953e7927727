"""SigV4 verification of control API requests (issue 15.5), against requests botocore itself signs."""

from __future__ import annotations

import datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict as CaseInsensitiveDict

from esm.api.sigv4 import AuthError, verify

KEY, SECRET = "AKIAEXAMPLEKEY000001", "s3cr3t-for-tests"
URL = "http://127.0.0.1:9091/2015-03-31/event-source-mappings/?FunctionName=arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aorders&MaxItems=2"


def signed(method: str = "GET", body: bytes = b"", secret: str = SECRET, region: str = "eu-west-1",
           service: str = "lambda") -> tuple[CaseInsensitiveDict, datetime.datetime]:
    request = AWSRequest(method=method, url=URL, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY, secret), service, region).add_auth(request)
    headers = CaseInsensitiveDict(dict(request.headers.items()))
    headers["Host"] = "127.0.0.1:9091"
    now = datetime.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    return headers, now


def test_a_request_botocore_signed_with_our_secret_verifies_in_any_region():
    """15.5: the signature is recomputed with botocore's signer and matches (the region is the client's)."""
    headers, now = signed("POST", b'{"BatchSize": 5}')
    verify("POST", URL, headers, b'{"BatchSize": 5}', KEY, SECRET, now=now)


@pytest.mark.parametrize("change, code", [
    ({"secret": "wrong"}, "InvalidSignatureException"),
    ({"service": "sqs"}, "InvalidSignatureException"),
])
def test_a_wrong_secret_or_service_is_refused(change, code):
    """15.5: a signature made with another secret, or for another service, does not verify."""
    headers, now = signed(**change)
    with pytest.raises(AuthError) as caught:
        verify("GET", URL, headers, b"", KEY, SECRET, now=now)
    assert caught.value.code == code
    assert SECRET not in str(caught.value)


def test_a_changed_body_method_or_query_is_refused():
    """15.5: the signature covers the body, the method and the query string."""
    headers, now = signed("POST", b'{"BatchSize": 5}')
    for method, url, body in (("POST", URL, b'{"BatchSize": 6}'), ("PUT", URL, b'{"BatchSize": 5}'),
                              ("POST", URL.replace("MaxItems=2", "MaxItems=3"), b'{"BatchSize": 5}')):
        with pytest.raises(AuthError) as caught:
            verify(method, url, headers, body, KEY, SECRET, now=now)
        assert caught.value.code == "InvalidSignatureException"


def test_unknown_key_missing_header_and_stale_time_get_their_own_errors():
    """15.5: Lambda's error types for an unknown access key, no Authorization, and a request signed
    more than 15 minutes away from the server's clock."""
    headers, now = signed()
    with pytest.raises(AuthError) as caught:
        verify("GET", URL, headers, b"", "AKIAOTHER", SECRET, now=now)
    assert caught.value.code == "UnrecognizedClientException"
    with pytest.raises(AuthError) as caught:
        verify("GET", URL, CaseInsensitiveDict({"Host": "127.0.0.1:9091"}), b"", KEY, SECRET, now=now)
    assert caught.value.code == "MissingAuthenticationTokenException"
    with pytest.raises(AuthError) as caught:
        verify("GET", URL, headers, b"", KEY, SECRET, now=now + datetime.timedelta(minutes=16))
    assert caught.value.code == "InvalidSignatureException" and "expired" in caught.value.message
