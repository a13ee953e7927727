"""Fuzzing the configuration loader (docs/design.md "Configuration", README "esm validate").

The rule under test: whatever a config file holds, esm answers with either valid settings or one
ConfigError listing problems, each a message at a path that exists in the file (or at the root,
or a missing field named by its parent). Never any other exception, never a traceback from
`esm validate`, which exits 2.

Documents are drawn from valid configs (every source, filters, destinations, `esm:`, `${ENV}`)
mutated by hypothesis: values replaced by garbage (wrong types, nulls, out-of-range and huge
numbers, NaN, bad ARNs, bad patterns and JMESPath, huge strings, nested junk, dates), keys
deleted, added or renamed, lists emptied or repeated, then the YAML text itself mutated (cut,
characters inserted, tags, aliases, deep nesting).
"""

from __future__ import annotations

import copy
import datetime
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esm.config.api_shape import create_mapping_shape
from esm.config.loading import EXTENSION_KEYS, FUNCTION_KEYS, TOP_LEVEL_KEYS, parse_config
from esm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

SETTINGS = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

SQS = "arn:aws:sqs:us-east-1:000000000000:orders"
KINESIS = "arn:aws:kinesis:us-east-1:000000000000:stream/payments"
VALID = {
    "functions": {
        "orders": {"url": "http://127.0.0.1:9000/2015-03-31/functions/function/invocations", "timeout": 30},
        "billing": {"lambda": "arn:aws:lambda:us-east-1:123456789012:function:billing"},
        "audit": {"handler": "myapp.handlers:process", "max_concurrency": 4},
    },
    "event_source_mappings": [
        {
            "FunctionName": "orders",
            "EventSourceArn": SQS,
            "BatchSize": 50,
            "MaximumBatchingWindowInSeconds": 2,
            "FilterCriteria": {"Filters": [{"Pattern": '{"body": {"status": ["paid"]}}'},
                                           {"Pattern": '{"body": {"n": [{"numeric": [">", 1, "<=", 5]}]}}'}]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 5},
            "esm": {"name": "orders-to-fn", "transform": "body.order"},
        },
        {
            "FunctionName": "billing",
            "EventSourceArn": KINESIS,
            "StartingPosition": "AT_TIMESTAMP",
            "StartingPositionTimestamp": 1600000000,
            "BatchSize": 100,
            "ParallelizationFactor": 2,
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 3,
            "MaximumRecordAgeInSeconds": 3600,
            "TumblingWindowInSeconds": 0,
            "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:failures"}},
            "FilterCriteria": {"Filters": [{"Pattern": '{"partitionKey": [{"prefix": "a"}]}'}]},
        },
        {
            "FunctionName": "audit",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092", "localhost:9093"]}},
            "SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"},
                                           {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}],
            "Topics": ["audit-log"],
            "StartingPosition": "LATEST",
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "esm-audit"},
            "DestinationConfig": {"OnFailure": {"Destination": "kafka://audit-failures"}},
            "ProvisionedPollerConfig": {"MaximumPollers": 3},
            "Enabled": False,
            "Tags": {"team": "${TEAM:-core}"},
        },
    ],
    "aws": {"region": "us-east-1", "endpoints": {"sqs": "${SQS_URL}"}},
    "checkpoints": {"sqlite": "./esm-state/checkpoints.db"},
    "metrics": {"listen": "127.0.0.1:9090"},
    "shutdown_timeout": 25,
    "startup_timeout": 60,
}
ENVIRON = {"SQS_URL": "http://127.0.0.1:9324"}


def test_the_seed_config_is_valid():
    """The fuzzers start from a valid document (else every mutation would be trivially invalid)."""
    config = parse_config(yaml.safe_dump(VALID), environ=ENVIRON)
    assert [m.source for m in config.mappings] == ["sqs", "kinesis", "kafka"]


# ---------------------------------------------------------------- garbage values

def _known_field_names() -> frozenset[str]:
    names: set[str] = set(TOP_LEVEL_KEYS) | set(FUNCTION_KEYS) | set(EXTENSION_KEYS)
    names |= {"region", "endpoints", "sqlite", "dynamodb", "table", "listen"}
    seen: set[int] = set()

    def walk(shape: Any) -> None:
        if id(shape) in seen:
            return
        seen.add(id(shape))
        for name, member in getattr(shape, "members", {}).items():
            names.add(name)
            walk(member)
        for attribute in ("member", "value"):
            if hasattr(shape, attribute):
                walk(getattr(shape, attribute))
        if hasattr(shape, "key"):  # a map whose keys are an enum: Endpoints.KAFKA_BOOTSTRAP_SERVERS
            names.update(shape.key.enum or ())

    walk(create_mapping_shape())
    return frozenset(names)


KNOWN_FIELDS = _known_field_names()


BAD_STRINGS = [
    "", " ", "arn:", "arn:aws:sqs", "arn:aws:sqs:us-east-1:0:q", "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/x",
    "arn:aws:mq:us-east-1:000000000000:broker:b", "arn:aws:sqs:us-east-1:000000000000:q.fifo",
    "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1", "arn:aws:kafka:us-east-1:000000000000:cluster/c/u",
    "arn:aws:sns:us-east-1:000000000000:t.fifo", "arn:aws:lambda:us-east-1:000000000000:function:f",
    "kafka://", "kafka://audit-log", "http://", "https://x", "ftp://x", "127.0.0.1", "host:99999", "[::1]:1",
    "{", "}", "[]", "{}", '{"a": []}', '{"a": [{"numeric": []}]}', '{"$or": []}', '{"a": [{"wildcard": "**"}]}',
    '{"body": ["x"]}', '{"data": ["x"]}', "null", "~", "TRIM_HORIZON", "AT_TIMESTAMP", "LATEST", "Queue",
    "ReportBatchItemFailures", "${UNSET}", "${UNSET:-}", "${TEAM:-${X}}", "$${X}", "${", "${1}",
    "a" * 5000, "x" * 100_000, "é\u0000\u202e\U0001f600", "2020-01-01T00:00:00Z", "1e400", "9" * 400,
    "foo(", "[?", "`{`", "a.b.c", "(" * 2000, "*" * 3000, "&&&", "\\", "'", '"',
]


def _garbage(depth: int = 0) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([0, -1, -2, 1, 2, 9, 10, 11, 60, 300, 301, 900, 901, 1000, 10000, 10001, 604800,
                         604801, 65535, 65536, 2**31, 2**63, 10**400, -(10**400)]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(BAD_STRINGS),
        st.text(max_size=30),
        st.dates(),
        st.datetimes(timezones=st.sampled_from([None, datetime.timezone.utc])),
    )
    if depth >= 2:
        return scalars
    inner = st.deferred(lambda: _garbage(depth + 1))
    return st.one_of(
        scalars,
        scalars,
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(sorted(KNOWN_FIELDS)), st.text(max_size=8)), inner, max_size=4),
    )


garbage = _garbage()


def _slots(doc: Any, path: tuple = ()) -> list[tuple]:
    """Every (container path, key or index) in the document, the root excluded."""
    out: list[tuple] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.append(path + (key,))
            out.extend(_slots(value, path + (key,)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out.append(path + (index,))
            out.extend(_slots(value, path + (index,)))
    return out


def _parent(doc: Any, slot: tuple) -> Any:
    for step in slot[:-1]:
        doc = doc[step]
    return doc


RENAMES = ["Queue", "Stream", "Type", "Properties", "batchsize", "BATCHSIZE", "esm ", "Esm", "functionName", "unknown",
           "Filters", "x.y", "7", "Topics"]


@st.composite
def mutated_docs(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(doc)
        if not slots:
            break
        slot = draw(st.sampled_from(slots))
        parent = _parent(doc, slot)
        key = slot[-1]
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "rename", "empty", "repeat"]))
        if action == "replace":
            parent[key] = draw(garbage)
        elif action == "delete":
            del parent[key]
        elif action == "add":
            if isinstance(parent, dict):
                parent[draw(st.one_of(st.sampled_from(RENAMES), st.sampled_from(sorted(KNOWN_FIELDS)), st.integers(),
                                      st.none(), st.booleans()))] = draw(garbage)
            else:
                parent.insert(key, draw(garbage))
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(RENAMES))] = parent.pop(key)
        elif action == "empty":
            value = parent[key]
            parent[key] = type(value)() if isinstance(value, (dict, list, str)) else None
        elif action == "repeat":
            value = parent[key]
            parent[key] = [copy.deepcopy(value) for _ in range(draw(st.integers(2, 8)))] if not isinstance(value, list) \
                else value * draw(st.integers(2, 6))
    return doc


# ---------------------------------------------------------------- text mutations

TEXT_INSERTS = [":", "{", "}", "[", "]", "&a ", "*a", "*b", "!!python/object:os.system ", "!!binary ", "!!float ",
                "!!int ", "!!timestamp ", "!!set ", "!!omap ", "? ", "- ", "|", ">", "#", "%YAML 1.1\n", "---\n",
                "\t", "\n", "'", '"', "\\", "\x00", "\ufeff", "@", "`", "2019-13-45", "2001-01-01T00:00:00+25:00"]


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    text = yaml.safe_dump(draw(mutated_docs()), sort_keys=False, allow_unicode=True)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "insert", "cut", "truncate"]))
        if action == "insert":
            text = text[:where] + draw(st.one_of(st.sampled_from(TEXT_INSERTS), st.text(max_size=4))) + text[where:]
        elif action == "cut":
            text = text[:where] + text[where + draw(st.integers(1, 20)):]
        else:
            text = text[:where]
    return text


ODD_DOCUMENTS = [
    "", "~", "[]", "42", "'just a string'", "- a\n- b\n", "!!python/object/apply:os.system ['true']\n",
    "functions: &f {x: *f}\nevent_source_mappings: []\n",
    "event_source_mappings: &l [*l]\nfunctions: {f: {url: 'http://x'}}\n",
    "a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
    "h: [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n",
    "functions: " + "[" * 5000 + "]" * 5000 + "\n",
    "functions: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "shutdown_timeout: 2019-13-45\n",
    "shutdown_timeout: !!float abc\n",
    "shutdown_timeout: !!timestamp not-a-time\n",
    "checkpoints: {Queue: ./db}\n",
    "startup_timeout: !!int abc\n",
    "metrics: !!binary '%%%'\n",
    "? [1, 2]\n: x\n",
    "functions: {f: {url: 'http://x'}}\nevent_source_mappings:\n- FunctionName: f\n  EventSourceArn: " + KINESIS
    + "\n  StartingPosition: AT_TIMESTAMP\n  StartingPositionTimestamp: 2001-01-01T00:00:00+25:00\n",
    "functions: {f: {url: 'http://x'}}\nevent_source_mappings:\n- FunctionName: f\n  EventSourceArn: " + KINESIS
    + "\n  StartingPosition: AT_TIMESTAMP\n  StartingPositionTimestamp: 1e400\n",
    "functions: {f: {url: 'http://x'}}\nevent_source_mappings:\n- FunctionName: f\n  EventSourceArn: " + KINESIS
    + "\n  StartingPosition: AT_TIMESTAMP\n  StartingPositionTimestamp: .inf\n",
    "functions: {f: {url: 'http://x'}}\nevent_source_mappings:\n- {FunctionName: f, EventSourceArn: " + SQS
    + ", esm: {transform: '" + "(" * 3000 + "'}}\n",
    "functions: {f: {url: 'http://x', timeout: .inf}}\nevent_source_mappings: []\nshutdown_timeout: .inf\n",
]


# ---------------------------------------------------------------- the oracle


_INDEX = re.compile(r"\[(\d+)\]")


def _resolves(node: Any, rest: str, at_root: bool) -> bool:
    """Whether `rest` (what is left of a problem path) leads through `node`, or names fields missing
    from the mapping `node`. Keys may hold any character, so every key that fits is tried."""
    if rest == "":
        return True
    body = rest if at_root else (rest[1:] if rest.startswith(".") else None)
    index = _INDEX.match(rest)
    if index is not None and isinstance(node, list) and int(index.group(1)) < len(node):
        if _resolves(node[int(index.group(1))], rest[index.end():], False):
            return True
    if body is None or not isinstance(node, dict):
        return False
    for key, value in node.items():
        text = str(key)
        if body.startswith(text) and body[len(text):len(text) + 1] in ("", ".", "["):
            if _resolves(value, body[len(text):], False):
                return True
    missing = body.split(".")
    return all(part in KNOWN_FIELDS for part in missing) and (not at_root or missing[0] in TOP_LEVEL_KEYS)


def assert_path_names_the_input(path: str, document: Any) -> None:
    """The path exists in the document, or only its last part(s) are missing from a mapping that is
    there, and those are field names (a missing required field, reported where it belongs)."""
    if path == "":
        return
    assert _resolves(document, path, True), f"problem path {path!r} is not in the document"


def check_config_text(text: str) -> None:
    try:
        document: Any = yaml.safe_load(text)
        readable = True
    except Exception:  # noqa: BLE001 - the oracle only needs to know whether YAML could be read
        document, readable = None, False
    try:
        parse_config(text, environ=ENVIRON)
    except ConfigError as error:
        assert error.problems, "a ConfigError lists at least one problem"
        for problem in error.problems:
            assert isinstance(problem.message, str) and problem.message.strip(), problem
            assert isinstance(problem.path, str), problem
            assert "Traceback" not in problem.message
            if readable:
                assert_path_names_the_input(problem.path, document)
            else:
                assert problem.path == "", f"unreadable YAML reported at {problem.path!r}"
        return
    assert readable, "a file that is not valid YAML was accepted"


# ---------------------------------------------------------------- the tests


@SETTINGS
@given(document=mutated_docs())
def test_mutated_configs_give_problems_at_real_paths(document: Any) -> None:
    """docs/design.md "Validation": a bad config fails with every problem listed at its zero-based path,
    as one ConfigError, never another exception."""
    check_config_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


@SETTINGS
@given(text=mutated_texts())
def test_mutated_yaml_text_never_crashes(text: str) -> None:
    """A file that is not YAML (or YAML that cannot be read as data) is a ConfigError at the root."""
    check_config_text(text)


@SETTINGS
@given(root=_garbage())
def test_any_root_value(root: Any) -> None:
    """A file whose root is not the expected mapping is one clear problem, never a crash."""
    check_config_text(yaml.safe_dump(root, allow_unicode=True))


@pytest.mark.parametrize("text", ODD_DOCUMENTS, ids=range(len(ODD_DOCUMENTS)))
def test_odd_documents(text: str) -> None:
    """YAML corner cases (recursive aliases, alias bombs, deep nesting, bad tags and dates, Python tags):
    a ConfigError or a valid config, nothing else."""
    check_config_text(text)


def test_python_tags_are_refused():
    """Security: YAML is read with safe_load, so a Python tag is an error, never an object built or a call made."""
    with pytest.raises(ConfigError) as caught:
        parse_config("functions: !!python/object/apply:os.system ['echo pwned']\nevent_source_mappings: []\n",
                     environ={})
    assert caught.value.problems[0].path == "" and "python/object/apply" in caught.value.problems[0].message


def test_infinite_timeouts_are_rejected():
    """docs/design.md "Configuration": timeouts are positive numbers of seconds; .inf and .nan are not numbers of seconds."""
    with pytest.raises(ConfigError) as caught:
        parse_config("functions: {f: {url: 'http://x', timeout: .inf}}\nevent_source_mappings: []\n"
                     "shutdown_timeout: .inf\nstartup_timeout: .nan\n", environ={})
    assert {p.path for p in caught.value.problems} == {"functions.f.timeout", "shutdown_timeout", "startup_timeout"}


# ---------------------------------------------------------------- the command line

def _odd(marker: str) -> str:
    return next(text for text in ODD_DOCUMENTS if marker in text)


CLI_FILES = [
    _odd("&f {x: *f}"),  # a recursive alias
    _odd("[" * 100),  # nested too deeply for PyYAML
    _odd("2019-13-45"),  # a date that is not a date
    _odd("1e400"),  # a timestamp botocore cannot parse
    _odd("(" * 100),  # JMESPath nested too deeply
    "functions: {f: {url: 7}}\nevent_source_mappings: [{FunctionName: f, EventSourceArn: 'arn:aws:sqs', Foo: [1]}]\n",
    "event_source_mappings: {\n",
]


def _randomly_mutated(seed: int) -> str:
    """The seed config with a few characters from TEXT_INSERTS dropped in at random (fixed seed)."""
    rng = random.Random(seed)
    text = yaml.safe_dump(VALID, sort_keys=False)
    for _ in range(4):
        where = rng.randrange(len(text))
        text = text[:where] + rng.choice(TEXT_INSERTS) + text[where:]
    return text


def test_esm_validate_exits_2_without_a_traceback(tmp_path):
    """README "esm validate": an invalid file lists its problems and exits 2 (a valid one exits 0);
    never a Python traceback."""
    files = [(text, True) for text in CLI_FILES] + [(_randomly_mutated(seed), False) for seed in range(4)]
    for index, (text, invalid) in enumerate(files):
        path = tmp_path / f"bad-{index}.yaml"
        path.write_text(text, encoding="utf-8")
        run = subprocess.run([sys.executable, "-m", "esm", "validate", "--config", str(path)],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
        output = run.stdout + run.stderr
        assert "Traceback" not in output, output[-2000:]
        assert run.returncode in ((2,) if invalid else (0, 2)), (text[:200], output[-2000:])
        if run.returncode == 2:
            assert f"{path}:" in run.stderr and "problem(s)" in run.stderr

