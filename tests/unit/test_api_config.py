"""The `api:` section of the config file (issue 15.5) and the one-mapping validation entry point."""

from __future__ import annotations

import pytest

from esm.config.loading import build_mapping, parse_config
from esm.errors import ConfigError

BASE = "functions: {orders: {handler: 'mod:fn'}}\nevent_source_mappings: []\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + text)
    return [str(p) for p in caught.value.problems]


def test_without_credentials_the_api_may_only_listen_on_loopback():
    """15.5: no credentials -> 127.0.0.1, ::1 or localhost only; anything else is a config error."""
    for host in ("127.0.0.1", "[::1]", "localhost"):
        assert parse_config(BASE + f"api: {{listen: '{host}:9091'}}").api.credentials is None
    [problem] = problems("api: {listen: '0.0.0.0:9091'}")
    assert problem.startswith("api.listen:") and "loopback" in problem


def test_credentials_come_from_the_environment_or_a_file_never_inline(tmp_path):
    """15.5: the secret is `{env: VAR}` or `{file: PATH}`; an inline secret is refused."""
    config = parse_config(BASE + "api: {listen: '0.0.0.0:9091', credentials: {access_key_id: AKIA1, "
                          "secret_access_key: {file: secret.txt}}}", base_dir=str(tmp_path))
    assert dict(config.api.credentials.secret_access_key) == {"file": str(tmp_path / "secret.txt")}
    assert dict(config.api.credentials.access_key_id) == {"value": "AKIA1"}
    [problem] = problems("api: {listen: '0.0.0.0:9091', credentials: {access_key_id: {env: K}, "
                         "secret_access_key: hunter2}}")
    assert problem.startswith("api.credentials.secret_access_key:") and "hunter2" not in problem


def test_build_mapping_checks_one_request_by_the_config_rules():
    """15.2: the API validates through the config file's rules, with paths relative to the request."""
    functions = parse_config(BASE).functions
    with pytest.raises(ConfigError) as caught:
        build_mapping({"FunctionName": "orders", "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q",
                       "BatchSize": 50}, dict(functions))
    assert [p.path for p in caught.value.problems] == ["MaximumBatchingWindowInSeconds"]
    built = build_mapping({"FunctionName": "orders", "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q"},
                          dict(functions))
    assert built.source == "sqs" and built.get("BatchSize") == 10


def test_esm_validate_says_the_api_needs_credentials_off_loopback(tmp_path, capsys):
    """15.5: `esm validate` names the problem (exit 2), and for a loopback API says it is unauthenticated."""
    from esm.cli import EXIT_INVALID, EXIT_OK, main

    config = tmp_path / "esm.yaml"
    config.write_text(BASE + "api: {listen: '0.0.0.0:9091'}\n")
    assert main(["validate", "--config", str(config)]) == EXIT_INVALID
    assert "api.listen" in capsys.readouterr().err
    config.write_text(BASE + "api: {listen: '127.0.0.1:9091'}\n")
    assert main(["validate", "--config", str(config)]) == EXIT_OK
    assert "no credentials: loopback only" in capsys.readouterr().out
