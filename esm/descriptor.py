"""What the shared modules know of a source: its descriptor (docs/design.md "Layout").

Each source package has a `descriptor.py` whose `DESCRIPTOR` the registry names. Config checks,
filters, `esm.transform`, `esm status`, the daemon and the template builder ask it instead of
branching on the source kind. Behaviour that needs heavier modules (the config rules, the source
class) is named by dotted path and imported on first use, so reading a descriptor stays cheap:
this module imports nothing of esm, and a descriptor module imports only this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# How a source carries its data field (what filters and esm.transform decode, behaviour §5, §9.10).
TEXT = "text"  # a string: JSON when it parses, else the string itself (SQS `body`)
BASE64 = "base64"  # base64 of UTF-8 text, JSON when it parses (Kinesis `data`, Kafka `value`)
JSON = "json"  # already JSON (DynamoDB's `dynamodb` object)


@dataclass(frozen=True)
class DataField:
    """The field of a record that holds its data: `container` names the object holding it
    (Kinesis: `kinesis`), `encoding` is TEXT, BASE64 or JSON, and `json_patterns_only` says a
    filter must match the data with a JSON object pattern (Kinesis, DynamoDB: behaviour §5)."""

    key: str
    encoding: str
    container: str | None = None
    json_patterns_only: bool = False


@dataclass(frozen=True)
class ArnlessSource:
    """A source named without an ARN (self-managed Kafka): the request key that names it, the
    message when that key comes with an ARN, and the function giving its source id from the
    request. (A request naming no source at all is AWS's "Unrecognized event source.".)"""

    key: str
    with_arn: str
    source_id: Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class StatusColumns:
    """`esm status` cells that exist for this source (behaviour §6); the others print `-`.

    counts: the per-source counters it has (`deleted`, `committed`, `on_failure`, `dropped`);
    acked: the counter shown as ACKED (SQS deletes, Kafka commits), or None;
    lag: `iterator_age` (milliseconds behind), `offset_lag` (records behind), or None."""

    counts: frozenset[str] = frozenset()
    acked: str | None = None
    lag: str | None = None


@dataclass(frozen=True)
class TemplateSupport:
    """The source in SAM and CloudFormation templates.

    sam_events: the SAM event types that become a mapping of this source, each with the SAM
    property that holds its EventSourceArn;
    resources: the CloudFormation resource types the template resolver names (and with
    `--create-resources` creates) for it, each with the dotted path of its
    esm.templates.resources.Kind;
    label: `label(arn_or_None, source_id) -> str`, how the start-up table names the source (None:
    the last part of the ARN's resource, or the source id without an ARN)."""

    sam_events: tuple[tuple[str, str], ...] = ()
    resources: tuple[tuple[str, str], ...] = ()
    label: Callable[[Any, str], str] | None = None


@dataclass(frozen=True)
class ApiAnswers:
    """What Lambda's control API answers for a mapping of this source (behaviour §10).

    user_reason: StateTransitionReason after a user's change ("USER_INITIATED" for SQS, "User
    action" for streams and Kafka);
    defaults: response members AWS answers when the request left them out, with their values;
    omitted: members AWS does not answer for this source (SQS: LastProcessingResult);
    duplicate: the ResourceConflictException text for a second mapping of one source and
    function, formatted with `source`, `function`, `function_arn`, `topics` and `uuid`;
    missing: the InvalidParameterValueException text when the source does not exist, formatted
    with `arn`; exists: dotted path of `async exists(clients, arn) -> True | False | None`, asked
    on create (False: it does not exist; None: it could not be told, the source unreachable), or
    None when the source cannot be asked."""

    user_reason: str = "User action"
    defaults: tuple[tuple[str, Any], ...] = ()
    omitted: tuple[str, ...] = ()
    duplicate: str = ('The event source arn (" {source} ") and function (" {function} ") provided mapping already '
                      'exists. Please update or delete the existing mapping with UUID {uuid}')
    missing: str = "Stream not found: {arn}"
    exists: str | None = None


@dataclass(frozen=True)
class SourceDescriptor:
    """One source, as the shared modules see it.

    kind: MappingSettings.source, the `source` metric label, the registry key;
    title: the source's name in messages ("DynamoDB Streams");
    source_class: dotted path of the class that runs one mapping (built as the supervisor says);
    arn_services: the ARN services naming this source; arn_check: dotted path of
    `check(arn) -> message or None` refusing ARNs of that service that are not a source (a table);
    claims: when several sources share an ARN service (an Amazon MQ broker is RabbitMQ or
    ActiveMQ), how a request names this one: the dotted path of `claims(request, extension) -> bool`
    (extension: the mapping's `esm:` section as written) and the
    words telling a user how (said when no source claims a request);
    arnless: how the source is named without an ARN, or None;
    rules: dotted path of `check(mapping_check)`: the source's config rules and AWS defaults;
    data: the data field filters and esm.transform look at;
    status: its `esm status` columns;
    templates: its SAM event types and the template resources it can create;
    checkpoints: it keeps positions in the daemon's checkpoint store;
    extension: the `esm:` keys only this source takes, each with the hint ending the message
    other sources get for it; extension_rules: dotted path of `check(extension, request) ->
    problems` cross-checking them;
    lanes_from_extension: its lanes come from `esm.parallelization_factor`, not ParallelizationFactor;
    unique_group_keys: request keys whose ConsumerGroupId no two mappings may share;
    conformance: dotted path of its adapter in the conformance tables, or None;
    answers: what the control API answers for its mappings (defaults, texts).
    safety: dotted path of the module holding its safety checks (esm.safety): `RULES`, each
    `rule(mapping, source_facts) -> (problem, advice, fix) or None`, and optionally
    `read_facts(mapping, clients, unread, probe)`, what the source says about itself; or None;
    replay: dotted path of the module `esm replay` uses for it (esm.replay): `replay_dlq(...)` for a
    queue's dead-letter queue, or `record_format`, `ours` and `read(clients, span, form, mapping)` to
    read an on-failure document's records again from the source; None: its failures are not replayed.
    max_function_timeout: the longest function timeout (seconds) Lambda allows this source's
    mappings, checked against the function target's `timeout:` (Kafka, Amazon MQ: 14 minutes); None: no
    limit of the source's own.
    """

    kind: str
    title: str
    source_class: str
    rules: str
    data: DataField
    arn_services: tuple[str, ...] = ()
    arn_check: str | None = None
    claims: tuple[str, str] | None = None
    arnless: ArnlessSource | None = None
    status: StatusColumns = StatusColumns()
    templates: TemplateSupport = TemplateSupport()
    checkpoints: bool = False
    extension: tuple[tuple[str, str], ...] = ()
    extension_rules: str | None = None
    lanes_from_extension: bool = False
    unique_group_keys: tuple[str, ...] = ()
    conformance: str | None = None
    answers: ApiAnswers = ApiAnswers()
    safety: str | None = None
    replay: str | None = None
    max_function_timeout: float | None = None
