"""A mapping's identity in the config (behaviour §9.9): uuid5 of its name unless `esm.uuid` pins it,
so a rename can keep its checkpoints and Kafka group; and a mapping naming a function whose entry
is invalid says so rather than calling the name unknown."""

from __future__ import annotations

import pytest

from esm.config.loading import mapping_uuid, parse_config
from esm.errors import ConfigError

BASE = """
functions:
  fn: {url: "http://127.0.0.1:9/"}
event_source_mappings:
  - FunctionName: fn
    EventSourceArn: arn:aws:kinesis:us-east-1:000000000000:stream/s
    StartingPosition: LATEST
    esm: %s
"""
PINNED = "0b7e54d2-1111-5000-8000-00000000abcd"


def test_the_uuid_follows_the_name_unless_pinned() -> None:
    named = parse_config(BASE % "{name: orders}").mappings[0]
    assert named.uuid == mapping_uuid("orders")
    renamed = parse_config(BASE % "{name: orders-v2}").mappings[0]
    assert renamed.uuid != named.uuid
    pinned = parse_config(BASE % f"{{name: orders-v2, uuid: '{PINNED.upper()}'}}").mappings[0]
    assert (pinned.name, pinned.uuid) == ("orders-v2", PINNED)


@pytest.mark.parametrize("value", ["orders", "1234", "0b7e54d2111150008000000000abcd", 7])
def test_esm_uuid_must_be_a_uuid(value: object) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(BASE % f"{{uuid: {value!r}}}".replace("'", '"'))
    assert [p.path for p in error.value.problems] == ["event_source_mappings[0].esm.uuid"]


def test_a_mapping_naming_an_invalid_function_points_at_it() -> None:
    text = BASE.replace('url: "http://127.0.0.1:9/"', 'url: "not a url"') % "{}"
    with pytest.raises(ConfigError) as error:
        parse_config(text)
    messages = {p.path: p.message for p in error.value.problems}
    assert messages["event_source_mappings[0].FunctionName"] == "'fn' names an invalid entry of functions (see functions.fn)"
    assert "functions.fn.url" in messages
