"""Kafka connection security without a broker: SourceAccessConfigurations rules (behaviour §1 "Auth",
Lambda's CreateEventSourceMapping checks), the `esm:` options of behaviour §9.10 (secrets outside AWS,
kafka_tls, on_failure_kafka), the access plan, Lambda's MSK broker choice, secrets from the
environment and files, and the MSK IAM token.

Each bad case asserts the path and the gist of the message, so a rule that stops firing fails.
"""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest
import yaml
from aiobotocore.session import get_session

from esm.aws import AwsClients
from esm.config.loading import parse_config
from esm.config.settings import AwsSettings
from esm.errors import ConfigError, SourceUnavailable
from esm.security.kafka_auth import (
    IAM,
    MTLS,
    NONE,
    PLAIN,
    SCRAM_SHA_256,
    SCRAM_SHA_512,
    client_options,
    ignored_note,
    plan_access,
)
from esm.security.secrets import SecretSource
from esm.sources.kafka.msk import IamTokenProvider, choose_brokers

SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:kafka-user"
CA = "arn:aws:secretsmanager:us-east-1:000000000000:secret:kafka-ca"
CERT = "arn:aws:secretsmanager:us-east-1:000000000000:secret:kafka-client"
MSK_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/demo/0b1a2c3d-4e5f-6789-abcd-ef0123456789-1"
FUNCTIONS = {"fn": {"url": "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"}}


def smk(*access: dict, **fields) -> dict:
    mapping = {"FunctionName": "fn", "Topics": ["orders"], "StartingPosition": "LATEST",
               "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}}, **fields}
    # Without authentication: the VPC entries AWS requires of a self-managed cluster (esm ignores them).
    mapping["SourceAccessConfigurations"] = list(access) or [
        {"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"}, {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}]
    return mapping


def msk(*access: dict, **fields) -> dict:
    mapping = {"FunctionName": "fn", "Topics": ["orders"], "StartingPosition": "LATEST", "EventSourceArn": MSK_ARN,
               **fields}
    if access:
        mapping["SourceAccessConfigurations"] = list(access)
    return mapping


def entry(kind: str, uri: str | None = SECRET) -> dict:
    return {"Type": kind} if uri is None else {"Type": kind, "URI": uri}


def parse(*mappings: dict):
    return parse_config(yaml.safe_dump({"functions": FUNCTIONS, "event_source_mappings": list(mappings)}),
                        base_dir="/etc/esm", environ={})


def problems(*mappings: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(*mappings)
    return [str(p) for p in caught.value.problems]


def one_problem(*mappings: dict) -> str:
    found = problems(*mappings)
    assert len(found) == 1, found
    return found[0]


P = "event_source_mappings[0]"


def test_self_managed_kafka_requires_source_access_configurations():
    """behaviour §9.11, §10: AWS refuses a self-managed mapping without SourceAccessConfigurations in
    fixed words, and esm validate says the same; a cluster without authentication gives its VPC
    entries, which are accepted (MSK needs none)."""
    for missing in (None, []):
        mapping = smk()
        if missing is None:
            del mapping["SourceAccessConfigurations"]
        else:
            mapping["SourceAccessConfigurations"] = missing
        found = one_problem(mapping)
        assert found.startswith(f"{P}.SourceAccessConfigurations: Required 'sourceAccessConfigurations' "
                                "parameter is missing. (")
        assert "VPC_SUBNET" in found
    assert parse(smk()).mappings[0].get("SourceAccessConfigurations")[0]["Type"] == "VPC_SUBNET"
    assert parse(msk()).mappings[0].get("SourceAccessConfigurations") is None


# -- SourceAccessConfigurations: what Lambda refuses -----------------------------------------------

def test_every_self_managed_auth_type_is_accepted():
    """behaviour §1 Auth: SMK takes BASIC_AUTH, SCRAM-256/512, CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE,
    IAM_AUTH (no URI) and the VPC types."""
    for access in ([entry("BASIC_AUTH"), entry("SERVER_ROOT_CA_CERTIFICATE", CA)], [entry("SASL_SCRAM_256_AUTH")],
                   [entry("SASL_SCRAM_512_AUTH")], [entry("CLIENT_CERTIFICATE_TLS_AUTH", CERT)],
                   [entry("IAM_AUTH", None)], [entry("VPC_SUBNET", "subnet-1"), entry("VPC_SECURITY_GROUP", "sg-1")]):
        assert parse(smk(*access)).mappings[0].get("SourceAccessConfigurations") == access


def test_two_authentication_methods_are_refused():
    """Lambda: one authentication method per mapping (BASIC_AUTH with SCRAM, or SASL with mTLS, is an error)."""
    assert one_problem(smk(entry("BASIC_AUTH"), entry("SASL_SCRAM_512_AUTH"))) == (
        f"{P}.SourceAccessConfigurations[1].Type: only one authentication method may be given "
        "(found BASIC_AUTH and SASL_SCRAM_512_AUTH)")
    assert "only one authentication method" in one_problem(
        smk(entry("SASL_SCRAM_256_AUTH"), entry("CLIENT_CERTIFICATE_TLS_AUTH", CERT)))


def test_a_type_twice_is_refused():
    assert one_problem(smk(entry("SERVER_ROOT_CA_CERTIFICATE", CA), entry("SERVER_ROOT_CA_CERTIFICATE", CA))) == (
        f"{P}.SourceAccessConfigurations[1].Type: SERVER_ROOT_CA_CERTIFICATE is given twice "
        "(also at SourceAccessConfigurations[0])")


def test_missing_uri_and_a_uri_where_none_belongs():
    """Secrets are named by URI (required); IAM_AUTH has no secret, so no URI."""
    assert one_problem(smk(entry("BASIC_AUTH", None))) == (
        f"{P}.SourceAccessConfigurations[0].URI: is required for BASIC_AUTH: the secret's ARN "
        "(or a name listed under esm.secrets)")
    assert one_problem(smk(entry("IAM_AUTH", "x"))) == (
        f"{P}.SourceAccessConfigurations[0].URI: must be omitted for IAM_AUTH (there is no secret)")
    assert one_problem(smk({"URI": SECRET})) == f"{P}.SourceAccessConfigurations[0].Type: is required"


def test_types_not_for_kafka_or_not_served():
    assert "VIRTUAL_HOST is for Amazon MQ" in one_problem(smk(entry("VIRTUAL_HOST", "/")))
    assert one_problem(smk(entry("OAUTHBEARER_AUTH"))).startswith(
        f"{P}.SourceAccessConfigurations[0].Type: OAUTHBEARER_AUTH is not served by esm yet")


def test_msk_types():
    """behaviour §1 Auth, MSK: IAM (no secret), SCRAM-512, mTLS; no SCRAM-256, no private root CA, no IAM_AUTH entry.
    BASIC_AUTH can only mean SCRAM-512 there (MSK has no SASL/PLAIN)."""
    for access in ([entry("SASL_SCRAM_512_AUTH")], [entry("BASIC_AUTH")], [entry("CLIENT_CERTIFICATE_TLS_AUTH", CERT)],
                   []):
        parse(msk(*access))
    assert "SHA-512 only" in one_problem(msk(entry("SASL_SCRAM_256_AUTH")))
    assert "Amazon MSK brokers use public certificates" in one_problem(msk(entry("SERVER_ROOT_CA_CERTIFICATE", CA)))
    assert "for Amazon MSK give no secret" in one_problem(msk(entry("IAM_AUTH", None)))


def test_source_access_configurations_are_not_for_sqs_or_kinesis():
    found = one_problem({"FunctionName": "fn", "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q",
                         "SourceAccessConfigurations": [entry("BASIC_AUTH")]})
    assert found == f"{P}.SourceAccessConfigurations: is not supported for SQS event sources"


# -- esm: options ------------------------------------------------------------------------------------

def test_esm_secrets_whole_or_by_field_with_paths_from_the_config_folder():
    """behaviour §9.10: outside AWS a secret's JSON, or each field, comes from an environment variable or a file."""
    config = parse(smk(entry("SASL_SCRAM_512_AUTH"), entry("SERVER_ROOT_CA_CERTIFICATE", CA),
                       esm={"secrets": {SECRET: {"username": "esm", "password": {"env": "KAFKA_PASSWORD"}},
                                        CA: {"file": "tls/ca.json"}}}))
    secrets = config.mappings[0].extension.secrets
    assert secrets[SECRET] == {"fields": {"username": {"value": "esm"}, "password": {"env": "KAFKA_PASSWORD"}}}
    assert secrets[CA] == {"whole": {"file": "/etc/esm/tls/ca.json"}}


def test_esm_secrets_errors():
    found = problems(smk(entry("BASIC_AUTH"), esm={"secrets": {SECRET: {"user": {"env": "U"}, "password": {"env": 3}}}}))
    assert f"{P}.esm.secrets.{SECRET}.user: unknown secret field; valid fields are username, password, certificate, " \
           "privateKey, privateKeyPassword (or env/file alone for the whole JSON)" in found
    assert f"{P}.esm.secrets.{SECRET}.password.env: must be a non-empty string" in found
    assert one_problem(smk(entry("BASIC_AUTH"), esm={"secrets": {"other": {"env": "X"}}})) == (
        f"{P}.esm.secrets.other: is not the URI of any secret in SourceAccessConfigurations (nor in esm.on_failure_kafka "
        "or the SchemaRegistryConfig's AccessConfigs)")
    assert "must be {env: VARIABLE} or {file: PATH}" in one_problem(
        smk(entry("BASIC_AUTH"), esm={"secrets": {SECRET: {"password": {"vault": "x"}}}}))


def test_kafka_tls_option():
    """Lambda runs SASL over TLS; esm: {kafka_tls: false} allows SASL_PLAINTEXT, but not with TLS-only settings."""
    plan = plan_access([entry("BASIC_AUTH")], msk=False, tls=parse(smk(entry("BASIC_AUTH"), esm={"kafka_tls": False}))
                       .mappings[0].extension.kafka_tls)
    assert plan.security_protocol == "SASL_PLAINTEXT"
    assert one_problem(smk(entry("CLIENT_CERTIFICATE_TLS_AUTH", CERT), esm={"kafka_tls": False})) == (
        f"{P}.esm.kafka_tls: false turns TLS off, which CLIENT_CERTIFICATE_TLS_AUTH needs")
    assert one_problem(smk(esm={"kafka_tls": "yes"})) == f"{P}.esm.kafka_tls: must be true or false (got 'yes')"
    assert "is for self-managed Kafka" in one_problem(msk(esm={"kafka_tls": True}))
    assert one_problem({"FunctionName": "fn", "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q",
                        "esm": {"kafka_tls": True}}) == f"{P}.esm.kafka_tls: is only for Kafka event sources"


def test_on_failure_kafka_option():
    """behaviour §9.10: a kafka:// on-failure topic in another cluster, with its own access settings."""
    other = {"bootstrap_servers": ["10.0.0.1:9096"], "SourceAccessConfigurations": [entry("SASL_SCRAM_512_AUTH")]}
    config = parse(smk(DestinationConfig={"OnFailure": {"Destination": "kafka://dlt"}},
                       esm={"on_failure_kafka": other, "secrets": {SECRET: {"env": "DLT_SECRET"}}}))
    spec = config.mappings[0].extension.on_failure_kafka
    assert spec["bootstrap_servers"] == ("10.0.0.1:9096",) and spec["tls"] is None
    path = f"{P}.esm.on_failure_kafka"
    assert one_problem(smk(esm={"on_failure_kafka": other})) == (
        f"{path}: names the cluster of a kafka:// on-failure destination, but "
        "DestinationConfig.OnFailure.Destination is not kafka://<topic>")
    dest = {"DestinationConfig": {"OnFailure": {"Destination": "kafka://dlt"}}}
    found = problems(smk(**dest, esm={"on_failure_kafka": {"bootstrap_servers": ["nope"], "acl": 1}}))
    assert f"{path}.acl: unknown field; valid fields are bootstrap_servers, SourceAccessConfigurations, tls" in found
    assert f"{path}.bootstrap_servers[0]: must be host:port (got 'nope')" in found
    assert one_problem(smk(**dest, esm={"on_failure_kafka": {}})) == (
        f"{path}.bootstrap_servers: is required: a list of 1 to 10 host:port entries")
    assert one_problem(smk(**dest, esm={"on_failure_kafka": {
        "bootstrap_servers": ["h:1"], "SourceAccessConfigurations": [entry("BASIC_AUTH"), entry("SASL_SCRAM_256_AUTH")]}})
    ) == (f"{path}.SourceAccessConfigurations[1].Type: only one authentication method may be given "
          "(found BASIC_AUTH and SASL_SCRAM_256_AUTH)")


# -- the plan ------------------------------------------------------------------------------------------

def test_plans_follow_lambda():
    """behaviour §1 Auth: SMK BASIC_AUTH = SASL/PLAIN, SCRAM types, mTLS; SASL over TLS; root CA alone = TLS; nothing =
    PLAINTEXT; MSK BASIC_AUTH = SCRAM-512. VPC entries are ignored with a note."""
    cases = [
        ([entry("BASIC_AUTH")], False, PLAIN, "SASL_SSL"),
        ([entry("SASL_SCRAM_256_AUTH")], False, SCRAM_SHA_256, "SASL_SSL"),
        ([entry("SASL_SCRAM_512_AUTH")], False, SCRAM_SHA_512, "SASL_SSL"),
        ([entry("CLIENT_CERTIFICATE_TLS_AUTH", CERT)], False, MTLS, "SSL"),
        ([entry("SERVER_ROOT_CA_CERTIFICATE", CA)], False, NONE, "SSL"),
        ([entry("IAM_AUTH", None)], False, IAM, "SASL_SSL"),
        ([], False, NONE, "PLAINTEXT"),
        ([entry("BASIC_AUTH")], True, SCRAM_SHA_512, "SASL_SSL"),
    ]
    for access, is_msk, auth, protocol in cases:
        plan = plan_access(access, msk=is_msk)
        assert (plan.auth, plan.security_protocol) == (auth, protocol), access
    plan = plan_access([entry("VPC_SUBNET", "subnet-1")], msk=False, tls=True)
    assert plan.security_protocol == "SSL"
    assert "ignoring VPC_SUBNET=subnet-1" in ignored_note(plan)


def test_client_options_for_sasl():
    plan = plan_access([entry("SASL_SCRAM_256_AUTH")], msk=False, tls=False)
    options = client_options(plan, {SECRET: {"username": "u", "password": "p"}})
    assert options == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                       "sasl_plain_username": "u", "sasl_plain_password": "p"}
    tls = client_options(plan_access([entry("BASIC_AUTH")], msk=False), {SECRET: {"username": "u", "password": "p"}})
    assert tls["security_protocol"] == "SASL_SSL" and tls["ssl_context"].check_hostname


def test_a_root_ca_that_is_not_pem_is_a_clear_error():
    plan = plan_access([entry("SERVER_ROOT_CA_CERTIFICATE", CA)], msk=False)
    with pytest.raises(SourceUnavailable, match="SERVER_ROOT_CA_CERTIFICATE secret is not a PEM certificate"):
        client_options(plan, {CA: {"certificate": "not a certificate"}})


# -- MSK: which broker string (Lambda's "How Lambda chooses a bootstrap broker") -----------------------

BROKERS = {"BootstrapBrokerString": "b-1:9092", "BootstrapBrokerStringTls": "b-1:9094",
           "BootstrapBrokerStringSaslScram": "b-1:9096,b-2:9096", "BootstrapBrokerStringSaslIam": "b-1:9098"}


def test_msk_broker_choice():
    """A secret decides (mTLS -> TLS brokers, SCRAM -> SCRAM brokers); without one the strongest the cluster
    has on: IAM, then TLS, then plaintext."""
    def choose(access, answer):
        servers, plan = choose_brokers(answer, plan_access(access, msk=True), MSK_ARN)
        return servers, plan.auth, plan.security_protocol

    assert choose([entry("CLIENT_CERTIFICATE_TLS_AUTH", CERT)], BROKERS) == (["b-1:9094"], MTLS, "SSL")
    assert choose([entry("BASIC_AUTH")], BROKERS) == (["b-1:9096", "b-2:9096"], SCRAM_SHA_512, "SASL_SSL")
    assert choose([], BROKERS) == (["b-1:9098"], IAM, "SASL_SSL")
    no_iam = {k: v for k, v in BROKERS.items() if k != "BootstrapBrokerStringSaslIam"}
    assert choose([], no_iam) == (["b-1:9094"], NONE, "SSL")
    assert choose([], {"BootstrapBrokerString": "b-1:9092"}) == (["b-1:9092"], NONE, "PLAINTEXT")


def test_msk_never_falls_back_to_a_weaker_broker():
    """Lambda: if the broker kind for the secret is missing, it does not try a weaker one."""
    with pytest.raises(SourceUnavailable, match="has no brokers for SASL/SCRAM .*BootstrapBrokerStringSaslScram"):
        choose_brokers({"BootstrapBrokerString": "b-1:9092"}, plan_access([entry("SASL_SCRAM_512_AUTH")], msk=True),
                       MSK_ARN)


# -- secrets outside AWS ---------------------------------------------------------------------------------

async def test_secrets_from_environment_and_files(tmp_path, monkeypatch):
    """behaviour §9.10: esm.secrets points a secret, or its fields, at environment variables or files."""
    (tmp_path / "secret.json").write_text(json.dumps({"username": "u1", "password": "p1", "extra": "x"}))
    (tmp_path / "key.pem").write_text("KEY")
    monkeypatch.setenv("CERT_PEM", "CERT")
    source = SecretSource(AwsClients(AwsSettings()), {
        SECRET: {"whole": {"file": str(tmp_path / "secret.json")}},
        CERT: {"fields": {"certificate": {"env": "CERT_PEM"}, "privateKey": {"file": str(tmp_path / "key.pem")}}},
    })
    assert await source.read(SECRET, "BASIC_AUTH") == {"username": "u1", "password": "p1"}
    assert await source.read(CERT, "CLIENT_CERTIFICATE_TLS_AUTH") == {"certificate": "CERT", "privateKey": "KEY"}


async def test_secret_errors_name_the_secret_and_never_its_value(tmp_path, monkeypatch):
    monkeypatch.setenv("BROKEN", "hunter2-not-json")
    monkeypatch.setenv("PARTIAL", json.dumps({"username": "u", "password": ""}))
    source = SecretSource(AwsClients(AwsSettings()), {
        "broken": {"whole": {"env": "BROKEN"}}, "partial": {"whole": {"env": "PARTIAL"}},
        "unset": {"whole": {"env": "ESM_TEST_NOT_SET"}}, "nofile": {"whole": {"file": str(tmp_path / "none.json")}},
    })
    with pytest.raises(SourceUnavailable) as caught:
        await source.read("broken", "BASIC_AUTH")
    assert "secret broken (BASIC_AUTH) is not a JSON object" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(SourceUnavailable, match=r"secret partial \(SASL_SCRAM_512_AUTH\) has no password"):
        await source.read("partial", "SASL_SCRAM_512_AUTH")
    with pytest.raises(SourceUnavailable, match="environment variable ESM_TEST_NOT_SET is not set"):
        await source.read("unset", "BASIC_AUTH")
    with pytest.raises(SourceUnavailable, match=r"secret nofile \(BASIC_AUTH\): cannot read .*none.json"):
        await source.read("nofile", "BASIC_AUTH")


# -- MSK IAM -----------------------------------------------------------------------------------------------

async def test_iam_token_is_a_presigned_kafka_cluster_connect_url():
    """behaviour §1 Auth, MSK IAM: the SASL/OAUTHBEARER token is AWS's MSK signer output: a base64url presigned GET of
    https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect, SigV4 for service kafka-cluster, signed with
    esm's credentials; it is reused until close to expiry. (No IAM-enabled broker runs here: the broker side is not
    tested.)"""
    session = get_session()
    session.set_credentials("AKIDESMTEST", "secret-key-never-in-token", "session-token")
    provider = IamTokenProvider(AwsClients(AwsSettings(), session=session), "eu-west-1")
    token = await provider.token()
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "kafka.eu-west-1.amazonaws.com", "/")
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIDESMTEST/")
    assert query["X-Amz-Credential"][0].endswith("/eu-west-1/kafka-cluster/aws4_request")
    assert query["X-Amz-Security-Token"] == ["session-token"]
    assert query["X-Amz-Expires"] == ["900"] and len(query["X-Amz-Signature"][0]) == 64
    assert "secret-key-never-in-token" not in url
    assert await provider.token() == token  # cached, not signed afresh per connection


REGISTRY_SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:registry-login"


def test_esm_secrets_may_hold_the_schema_registry_credentials():
    """behaviour §9.10: a Confluent registry's AccessConfigs secrets can come from esm.secrets as well."""
    registry = {"SchemaRegistryConfig": {
        "SchemaRegistryURI": "https://registry.example:8081", "EventRecordFormat": "JSON",
        "SchemaValidationConfigs": [{"Attribute": "VALUE"}],
        "AccessConfigs": [{"Type": "BASIC_AUTH", "URI": REGISTRY_SECRET}]}}
    mapping = smk(esm={"secrets": {REGISTRY_SECRET: {"env": "REGISTRY_LOGIN"}}})
    mapping["SelfManagedKafkaEventSourceConfig"] = {**mapping.get("SelfManagedKafkaEventSourceConfig", {}), **registry}
    config = parse(mapping)
    assert config.mappings[0].extension.secrets[REGISTRY_SECRET] == {"whole": {"env": "REGISTRY_LOGIN"}}
