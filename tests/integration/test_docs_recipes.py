"""docs/aws.md's recipes for moving a mapping from Lambda to esm, run as printed: each `bash`
block under "Moving a mapping from Lambda to esm" is read out of the page and run by bash, so a
recipe whose commands stop working fails here rather than at a user's switch. The AWS CLI and esm
reach the local servers through `AWS_ENDPOINT_URL_<SERVICE>`, as the page says; the one change to
the text is the metrics port (a free one instead of 9090).

Lambda is played by real parts where there are some: esm's own control API is the event source
mapping API that the recipes' `aws lambda update-event-source-mapping` and
`get-event-source-mapping` talk to, and a daemon behind it consumes the source as "the Lambda
mapping". No server here runs a function by name, so `LambdaFront` is a FAKE of Lambda's one
endpoint for that part only: Invoke is recorded (and answered with success), every other request
is passed on to the real control API. The rule checked per source (StartingPosition, behaviour §1; the
page's own promise): after the switch, the records written while Lambda was disabled are delivered
by esm, none is lost. The disable-and-wait lines also run against moto's Lambda (its event
source mapping API answers; it runs no function without Docker).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
import boto3
import pytest
from aiohttp import web
from botocore.config import Config as BotoConfig

from esm.config.loading import parse_config
from tests.support.daemon import running_config
from tests.support.dynamodb import create_table, dynamodb_client, item, put_items
from tests.support.fake_server import LoopbackApi
from tests.support.kinesis import create_stream, kinesis_client, put
from tests.support.ports import free_port
from tests.support.processes import stop_group
from tests.support.sqs import create_queue, send, sqs_client
from tests.support.waiting import wait_until

pytestmark = pytest.mark.backends

PAGE = Path(__file__).resolve().parents[2] / "docs" / "aws.md"
BIN = Path(sys.executable).parent
FUNCTION = "orders"
LAMBDA = "lambda-mapping"  # the function name the stand-in's invokes are recorded under


def recipe(source: str) -> str:
    """The first bash block under `### <source>` in the page's migration section."""
    section = PAGE.read_text().split("## Moving a mapping from Lambda to esm", 1)[1]
    part = section.split(f"### {source}\n", 1)[1].split("\n### ", 1)[0]
    found = re.search(r"```bash\n(.*?)```", part, re.S)
    assert found, f"no bash block under ### {source} in {PAGE.name}"
    return found.group(1)


def body_of(record: dict[str, Any]) -> str:
    if "body" in record:
        return record["body"]
    if "kinesis" in record:
        return base64.b64decode(record["kinesis"]["data"]).decode()
    return record["dynamodb"]["Keys"]["pk"]["S"]


class LambdaFront(LoopbackApi):
    """FAKE Lambda endpoint: records Invoke by function name, forwards the rest to `control`."""

    def __init__(self) -> None:
        self.control = ""
        self.delivered: dict[str, list[str]] = {}

    async def _invoke(self, request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        self.delivered.setdefault(request.match_info["name"], []).extend(map(body_of, event["Records"]))
        return web.json_response({})

    async def _forward(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as session:
            async with session.request(request.method, self.control + request.path_qs, headers=headers,
                                       data=await request.read()) as answer:
                kept = {k: v for k, v in answer.headers.items() if k.lower().startswith(("content-type", "x-amz"))}
                return web.Response(status=answer.status, body=await answer.read(), headers=kept)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2015-03-31/functions/{name}/invocations", self._invoke)
        app.router.add_route("*", "/{tail:.*}", self._forward)

    def got(self, function: str) -> list[str]:
        return self.delivered.get(function, [])


class Switch:
    """The Lambda side before the switch: the front, the stand-in daemon with its API, a mapping."""

    def __init__(self, front: LambdaFront, api: str, tmp_path: Path):
        self.front, self.api, self.tmp_path = front, api, tmp_path
        self.lam = boto3.client("lambda", endpoint_url=api, region_name="us-east-1", aws_access_key_id="test",
                                aws_secret_access_key="test", config=BotoConfig(retries={"max_attempts": 1}))

    async def state(self, mapping: str) -> str:
        # boto3 blocks: off the loop, where the stand-in daemon answers
        answer = await asyncio.to_thread(self.lam.get_event_source_mapping, UUID=mapping)
        return answer["State"]

    async def is_state(self, mapping: str, state: str) -> bool:
        return await self.state(mapping) == state

    async def create(self, source_arn: str, **extra: Any) -> str:
        answer = await asyncio.to_thread(self.lam.create_event_source_mapping, FunctionName=FUNCTION,
                                         EventSourceArn=source_arn, BatchSize=10, **extra)
        mapping = answer["UUID"]
        await wait_until(lambda: self.is_state(mapping, "Enabled"), timeout=60, what="the Lambda mapping enabled")
        return mapping

    async def run_recipe(self, source: str, env: dict[str, str], until: Callable[[], bool],
                         while_disabled: Callable[[], Any], mapping: str) -> None:
        """Run the page's script; once the stand-in reports Disabled, write (while_disabled); wait
        for `until`, then SIGTERM the script's process group (esm drains and exits)."""
        script = self.tmp_path / f"{source.split()[0].lower()}-recipe.sh"
        # the one substitution: the metrics port, so the test never competes for 9090 on a shared machine
        text = recipe(source)
        assert "127.0.0.1:9090" in text, "the recipe's config names no metrics address to substitute"
        script.write_text(text.replace("127.0.0.1:9090", f"127.0.0.1:{free_port()}"))
        full = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", AWS_ENDPOINT_URL_LAMBDA=self.front.url,
                    AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
                    AWS_REGION="us-east-1", AWS_PAGER="", U=mapping, FUNCTION=FUNCTION, **env)
        log = self.tmp_path / "recipe.log"
        with log.open("w") as out:
            process = subprocess.Popen(["bash", "-e", str(script)], cwd=self.tmp_path, env=full, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            await wait_until(lambda: self.is_state(mapping, "Disabled"), timeout=60, what="the Lambda mapping disabled")
            await while_disabled()
            await wait_until(lambda: until() or process.poll() is not None, timeout=90,
                             what="esm delivered what was written while Lambda was disabled")
            assert process.poll() is None, f"the recipe ended (exit {process.returncode}):\n{log.read_text()}"
        finally:
            await asyncio.to_thread(stop_group, process)
        text = log.read_text()
        assert "esm.yaml: valid" in text, text
        assert until(), text


@contextlib.asynccontextmanager
async def lambda_side(tmp_path: Path) -> AsyncIterator[Switch]:
    """In the test's own loop (the stand-in daemon must run while the test awaits)."""
    front = await LambdaFront().start()
    port = free_port()
    config = parse_config(json.dumps({
        "functions": {FUNCTION: {"url": f"{front.url}/2015-03-31/functions/{LAMBDA}/invocations"}},
        "event_source_mappings": [], "checkpoints": {"sqlite": str(tmp_path / "lambda-side.db")},
        "api": {"listen": f"127.0.0.1:{port}"}, "metrics": {"listen": "127.0.0.1:0"},
        "shutdown_timeout": 10, "startup_timeout": 30}))
    front.control = f"http://127.0.0.1:{port}"
    try:
        async with running_config(config):
            yield Switch(front, front.control, tmp_path)
    finally:
        await front.stop()


async def test_the_sqs_recipe_hands_the_queue_over(backends: dict[str, str], tmp_path: Path) -> None:
    """SQS: the queue is the position. Lambda took the first messages; what is sent while it is
    disabled is esm's, and nothing Lambda already processed comes again."""
    async with lambda_side(tmp_path) as switch:
        async with sqs_client() as sqs:
            url, arn = await create_queue(sqs, "recipe")
            mapping = await switch.create(arn)
            await send(sqs, url, ["a1", "a2", "a3"])
            await wait_until(lambda: sorted(switch.front.got(LAMBDA)) == ["a1", "a2", "a3"], timeout=60,
                             what="the Lambda mapping processed the first messages")
            await switch.run_recipe("SQS", {"QUEUE_ARN": arn}, mapping=mapping,
                                    while_disabled=lambda: send(sqs, url, ["b1", "b2", "b3"]),
                                    until=lambda: sorted(switch.front.got(FUNCTION)) == ["b1", "b2", "b3"])
        assert sorted(switch.front.got(LAMBDA)) == ["a1", "a2", "a3"]


async def test_the_kinesis_recipe_resumes_at_a_timestamp_before_lambdas_position(backends: dict[str, str],
                                                                                tmp_path: Path) -> None:
    """Kinesis: AT_TIMESTAMP (now - BEHIND) covers what was written while Lambda was disabled, and,
    with BEHIND larger than the test's age, the records Lambda had processed too (the documented
    overlap: delivered twice, never lost)."""
    async with lambda_side(tmp_path) as switch:
        async with kinesis_client() as kinesis:
            name, arn = await create_stream(kinesis)
            mapping = await switch.create(arn, StartingPosition="TRIM_HORIZON")
            await put(kinesis, name, [("k", b"a1"), ("k", b"a2")])
            await wait_until(lambda: switch.front.got(LAMBDA) == ["a1", "a2"], timeout=60,
                             what="the Lambda mapping processed the first records")
            await switch.run_recipe("Kinesis", {"STREAM_ARN": arn, "BEHIND": "600"}, mapping=mapping,
                                    while_disabled=lambda: put(kinesis, name, [("k", b"b1"), ("k", b"b2")]),
                                    until=lambda: switch.front.got(FUNCTION) == ["a1", "a2", "b1", "b2"])
        assert switch.front.got(LAMBDA) == ["a1", "a2"]


async def test_the_dynamodb_recipe_starts_at_trim_horizon(backends: dict[str, str], tmp_path: Path) -> None:
    """DynamoDB Streams: TRIM_HORIZON delivers the stream's records again (Lambda's and those
    written while it was disabled), in order."""
    async with lambda_side(tmp_path) as switch:
        async with dynamodb_client() as ddb:
            table, arn = await create_table(ddb, "KEYS_ONLY")
            mapping = await switch.create(arn, StartingPosition="TRIM_HORIZON")
            await put_items(ddb, table, [item("a1"), item("a2")])
            await wait_until(lambda: switch.front.got(LAMBDA) == ["a1", "a2"], timeout=60,
                             what="the Lambda mapping processed the first items")
            await switch.run_recipe("DynamoDB Streams", {"STREAM_ARN": arn}, mapping=mapping,
                                    while_disabled=lambda: put_items(ddb, table, [item("b1"), item("b2")]),
                                    until=lambda: switch.front.got(FUNCTION) == ["a1", "a2", "b1", "b2"])
        assert switch.front.got(LAMBDA) == ["a1", "a2"]


@pytest.mark.parametrize("source", ["SQS", "Kinesis", "DynamoDB Streams"])
def test_the_recipes_disable_and_wait_against_motos_lambda(backends: dict[str, str], tmp_path: Path,
                                                           source: str) -> None:
    """The recipes' first two lines (disable the Lambda mapping, wait until it reports Disabled) as
    the AWS CLI runs them against moto's Lambda, an event source mapping API that is not esm's: the
    commands and their `--query State --output text` loop work on a second implementation of AWS's
    model, and the loop ends once the mapping is Disabled. (moto runs no function without Docker,
    so the hand-over itself is the tests above.)"""
    moto = backends["ESM_AWS_ENDPOINT"]
    clients = {name: boto3.client(name, endpoint_url=moto, region_name="us-east-1", aws_access_key_id="test",
                                  aws_secret_access_key="test") for name in ("iam", "lambda", "sqs")}
    suffix = os.urandom(4).hex()
    role = clients["iam"].create_role(RoleName=f"recipe-{suffix}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    function = f"recipe-{suffix}"
    clients["lambda"].create_function(FunctionName=function, Runtime="python3.12", Role=role, Handler="app.handler",
                                      Code={"ZipFile": code.getvalue()})
    queue = clients["sqs"].create_queue(QueueName=f"recipe-{suffix}")["QueueUrl"]
    arn = clients["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = clients["lambda"].create_event_source_mapping(FunctionName=function, EventSourceArn=arn)["UUID"]
    lines = recipe(source).splitlines()[:2]
    assert lines[0].startswith("aws lambda update-event-source-mapping") and lines[1].startswith("until "), lines
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", AWS_ENDPOINT_URL_LAMBDA=moto,
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="",
               U=mapping)
    done = subprocess.run(["bash", "-ec", "\n".join(lines)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert clients["lambda"].get_event_source_mapping(UUID=mapping)["State"] == "Disabled"
