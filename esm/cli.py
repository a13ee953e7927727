"""The command line: `esm run | validate | test-pattern | status | version`.

Exit codes (docs/design.md): 0 ok, 1 runtime failure, 2 invalid config or pattern, 3 a source or
target still unreachable after the startup timeout.
"""

from __future__ import annotations

import argparse
import sys

from esm import __version__

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3

# The version policy in one line (docs/versioning.md has the table; a test keeps the two in step).
VERSION_POLICY = (
    "version policy: patch releases fix bugs only; a minor release only adds (config keys, metrics, labels, "
    "CLI options) and reads every stored state an earlier 0.x/1.x release wrote; a major release may rename "
    "or remove config keys, metrics or labels, and may change stored state, with a migration note in "
    "CHANGELOG.md (docs/versioning.md)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esm", description="AWS Lambda event source mappings, anywhere.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", "-c", help="the YAML configuration file (with --template: optional overrides)")
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    _template_arguments(run, run=True)
    validate = commands.add_parser("validate", help="check a configuration file or template offline")
    validate.add_argument("--config", "-c")
    validate.add_argument("--positions", action="store_true",
                          help="also read the checkpoint store and Kafka groups for orphaned positions (network)")
    _template_arguments(validate, run=False)
    pattern = commands.add_parser("test-pattern", help="match one event against one filter pattern")
    pattern.add_argument("--pattern", required=True, help="an EventBridge event pattern (JSON)")
    pattern.add_argument("--event", required=True, help="the event or record (JSON)")
    status = commands.add_parser("status", help="read a running daemon's metrics into a table")
    status.add_argument("--url", default="http://127.0.0.1:9090/metrics")
    commands.add_parser("version", help="print the version")
    replay = commands.add_parser("replay", help="send failed records through a mapping's function again "
                                 "(a dry run unless --execute)")
    replay.add_argument("--config", "-c", required=True)
    replay.add_argument("--mapping", "-m", required=True, help="the mapping's name or UUID")
    origin = replay.add_mutually_exclusive_group(required=True)
    origin.add_argument("--dlq", nargs="?", const="", metavar="ARN",
                        help="SQS: move the dead-letter queue's messages back to the source queue "
                             "(the DLQ of the queue's redrive policy unless an ARN is given)")
    origin.add_argument("--from", dest="origin", metavar="ARN_OR_S3",
                        help="Kinesis, Kafka: the on-failure destination holding the documents "
                             "(an SQS queue ARN, or s3://bucket/prefix)")
    replay.add_argument("--execute", action="store_true", help="replay; without it, only say what would be")
    replay.add_argument("--rate", type=float, help="at most this many records (messages) a second")
    return parser


def _template_arguments(parser: argparse.ArgumentParser, *, run: bool) -> None:
    """`--template` and its options (esm.templates, issue 16)."""
    group = parser.add_argument_group("SAM / CloudFormation templates")
    group.add_argument("--template", "-t", help="run the event source mappings of this SAM or CloudFormation template")
    group.add_argument("--parameter-overrides", nargs="+", default=[], metavar="KEY=VALUE",
                       help="template parameter values (also AWS::Region=..., AWS::AccountId=...)")
    group.add_argument("--functions-endpoint", metavar="URL",
                       help="invoke every template function through the Lambda Invoke API at URL, by logical id")
    group.add_argument("--functions-url", metavar="PATTERN",
                       help="invoke every template function at this URL; {function} becomes its logical id")
    group.add_argument("--skip-unsupported", action="store_true",
                       help="run the other mappings when some use a source esm does not serve yet (a warning each)")
    if run:
        group.add_argument("--stack", help="find the template's resources in this deployed stack (DescribeStackResources)")
        group.add_argument("--create-resources", action="store_true",
                           help="create the template's queues, streams and tables first (only on endpoint overrides)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("run", "validate") and not (args.config or args.template):
        _parser().error(f"{args.command}: give --config FILE or --template FILE")
    handler = {
        "run": _run,
        "validate": _validate,
        "test-pattern": _test_pattern,
        "status": _status,
        "version": _version,
        "replay": _replay,
    }[args.command]
    return handler(args)


def _version(args: argparse.Namespace) -> int:
    print(f"esm {__version__}")
    print(VERSION_POLICY)
    return EXIT_OK


def _load_template(args: argparse.Namespace, *, offline: bool):  # -> esm.templates.LoadedTemplate
    from esm.templates import TemplateOptions, load_template, parse_parameter_overrides

    return load_template(TemplateOptions(
        template=args.template, parameter_overrides=parse_parameter_overrides(args.parameter_overrides),
        config=args.config, stack=getattr(args, "stack", None),
        create_resources=getattr(args, "create_resources", False), functions_endpoint=args.functions_endpoint,
        functions_url=args.functions_url, skip_unsupported=args.skip_unsupported, offline=offline))


def _validate_template(args: argparse.Namespace) -> int:
    from esm.errors import ConfigError
    from esm.templates.report import table

    try:
        loaded = _load_template(args, offline=True)
    except ConfigError as error:
        print(f"{args.template}: {len(error.problems)} problem(s)", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    config = loaded.config
    print(f"{args.template}: valid ({len(config.mappings)} mapping(s), {len(config.functions)} function(s))")
    print(table(loaded))
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from esm.config.loading import load_config
    from esm.errors import ConfigError

    if args.template:
        return _validate_template(args)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"{args.config}: {len(error.problems)} problem(s)", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.config}: valid ({len(config.mappings)} mapping(s), {len(config.functions)} function(s))")
    for mapping in config.mappings:
        state = "enabled" if mapping.enabled else "disabled"
        print(f"  {mapping.uuid}  {mapping.source:<8} {mapping.name} -> {mapping.function.name} ({state})")
    if config.api is not None:  # a non-loopback listener without credentials is a config error above
        auth = "SigV4 with api.credentials" if config.api.credentials else "no credentials: loopback only"
        print(f"  control API on {config.api.listen} ({auth})")
    _safety_checks(config)
    if args.positions:
        return _validate_positions(config)
    return EXIT_OK


def _validate_positions(config) -> int:  # config: esm.config.settings.Config
    """`esm validate --positions`: orphaned positions (esm.positions); exit 1 when any is found."""
    import asyncio

    from esm import positions
    from esm.aws import AwsClients
    from esm.checkpoints import make_checkpoint_store

    async def check() -> list[positions.Finding]:
        clients = AwsClients(config.aws)
        store = make_checkpoint_store(config.checkpoints, clients)
        await store.open()
        try:
            return await positions.check(config.mappings, store, clients)
        finally:
            await store.close()

    found = asyncio.run(check())
    for finding in found:
        print(f"  {finding.message}")
    print(f"  positions: {len(found)} finding(s)")
    return EXIT_RUNTIME if found else EXIT_OK


def _safety_checks(config) -> None:  # config: esm.config.settings.Config
    """The safety checks (esm.safety), with the queue attributes and reserved concurrency read where
    the endpoint answers; warnings only, the exit code stays 0."""
    import asyncio

    from esm.aws import AwsClients
    from esm.safety import review

    reviewed = asyncio.run(review(config.mappings, AwsClients(config.aws)))
    warnings = [w for _, _, found in reviewed for w in found]
    print(f"safety checks: {len(warnings)} warning(s)")
    for warning in warnings:
        print(f"  warning: {warning.line()}")
    for mapping, facts, _ in reviewed:
        for what in facts.unread:
            print(f"  not checked: {mapping.name}: {what}")


def _replay(args: argparse.Namespace) -> int:
    from esm.replay.cli import replay

    return replay(args)


def _test_pattern(args: argparse.Namespace) -> int:
    from esm.filtering import InvalidPatternError, test_pattern

    try:
        result = test_pattern(args.pattern, args.event)
    except InvalidPatternError as error:
        print(f"Invalid filter pattern definition: {error}", file=sys.stderr)
        return EXIT_INVALID
    except ValueError as error:
        print(f"Invalid event: {error}", file=sys.stderr)
        return EXIT_INVALID
    print("true" if result else "false")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from esm.observability.status import print_status

    return print_status(args.url)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from esm.config.loading import load_config
    from esm.daemon import StartupTimeout, run_daemon, tune_garbage_collector
    from esm.errors import ConfigError
    from esm.observability.logs import configure_logging

    configure_logging(args.log_format, args.log_level)
    # An in-process handler's print() is its log, as Lambda's would be: seen when printed, a line at
    # a time, even when stdout is a file or a pipe (a container's), which Python would buffer.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        if args.template:
            from esm.templates import report

            loaded = _load_template(args, offline=False)
            if args.log_format == "json":
                import logging

                report.log(loaded, logging.getLogger("esm.templates"))
            else:
                print(report.table(loaded), flush=True)
            loaded.install()
            config = loaded.config
        else:
            config = load_config(args.config)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{args.template or args.config}: {problem}", file=sys.stderr)
        return EXIT_INVALID
    tune_garbage_collector()  # once, for the process `esm run` is (not when the daemon is embedded)
    try:
        asyncio.run(run_daemon(config))
    except StartupTimeout as error:
        print(f"esm: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as error:  # the last line of defence: say what killed the daemon
        import logging

        logging.getLogger("esm").exception("esm stopped: %s", error)
        return EXIT_RUNTIME
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
