"""docs/api.md's examples, run as printed: the page's config is started with `esm run`, each `$ aws
lambda ...` line of its console block is run by bash and must print what the page shows, and the
boto3 example runs to its end. A change to the control API that makes the page wrong fails here.

What the test changes in the page's text, and nothing else: the listener ports (free ones instead
of 9090 and 9091), the queue's name (a unique one in the shared ElasticMQ) and, in the boto3
example, the secret (`"..."`). Outputs are compared with the mapping's UUID and `LastModified`
(a time) put back to the page's values.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

from tests.support.ports import free_port
from tests.support.sqs import create_queue, sqs_client
from tests.support.waiting import wait_until

pytestmark = pytest.mark.backends

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BIN = Path(sys.executable).parent
PAGE_UUID = "3877ea8c-88ba-4f09-860e-10e9a0d932ae"
KEY_ID = "AKIAESMEXAMPLE000001"
HANDLERS = "def process(event, context):\n    return {}\n"
LAST_MODIFIED = re.compile(r'"LastModified": [0-9.]+')


def block(kind: str) -> str:
    found = re.search(rf"```{kind}\n(.*?)```", PAGE.read_text(), re.S)
    assert found, f"no {kind} block in {PAGE.name}"
    return found.group(1)


def commands() -> list[tuple[str, str]]:
    """(command, expected output) for each `$ ` line of the console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in block("console").splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in steps]


class Listener:
    def __init__(self, folder: Path, queue: str):
        self.folder, self.queue = folder, queue
        self.api_port, self.metrics_port = free_port(), free_port()
        self.secret = uuid.uuid4().hex
        self.env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", AWS_PAGER="",
                        ESM_API_ACCESS_KEY_ID=KEY_ID, ESM_API_SECRET_ACCESS_KEY=self.secret,
                        AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=self.secret, AWS_DEFAULT_REGION="us-east-1",
                        AWS_REGION="us-east-1")
        self.env.pop("AWS_ENDPOINT_URL_LAMBDA", None)

    def local(self, text: str) -> str:
        """The page's text with this test's ports and queue."""
        return (text.replace("127.0.0.1:9091", f"127.0.0.1:{self.api_port}")
                .replace("127.0.0.1:9090", f"127.0.0.1:{self.metrics_port}")
                .replace(":000000000000:orders", f":000000000000:{self.queue}"))

    def as_page(self, text: str, made: str) -> str:
        """Real output in the page's terms: its UUID, queue name and port; times blanked."""
        text = (text.replace(made, PAGE_UUID).replace(f":000000000000:{self.queue}", ":000000000000:orders")
                .replace(f"127.0.0.1:{self.api_port}", "127.0.0.1:9091"))
        return LAST_MODIFIED.sub('"LastModified": T', text)

    def run(self, command: str) -> str:
        done = subprocess.run(["bash", "-c", command], cwd=self.folder, env=self.env, capture_output=True,
                              text=True, timeout=120)
        return (done.stdout + done.stderr).rstrip("\n")

    def client(self):  # boto3's lambda client, as the page's example makes it
        return boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{self.api_port}", region_name="us-east-1",
                            aws_access_key_id=KEY_ID, aws_secret_access_key=self.secret)

    async def wait_state(self, mapping: str, state: str) -> None:
        await wait_until(lambda: self.client().get_event_source_mapping(UUID=mapping)["State"] == state,
                         timeout=60, what=f"{mapping} {state}", interval=0.2)


async def start(tmp_path: Path) -> tuple[Listener, subprocess.Popen[str]]:
    async with sqs_client() as sqs:
        _, arn = await create_queue(sqs, "docs-api")
    listener = Listener(tmp_path, arn.rsplit(":", 1)[1])
    (tmp_path / "esm.yaml").write_text(listener.local(block("yaml")))
    (tmp_path / "handlers.py").write_text(HANDLERS)
    log = (tmp_path / "esm.log").open("w")
    process = subprocess.Popen([str(BIN / "esm"), "run", "--config", "esm.yaml"], cwd=tmp_path, env=listener.env,
                               stdout=log, stderr=subprocess.STDOUT)

    def answers() -> bool:
        assert process.poll() is None, (tmp_path / "esm.log").read_text()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{listener.api_port}/", timeout=2)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True
    await wait_until(answers, timeout=60, what="the control API answers")
    return listener, process


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()


async def test_the_pages_aws_cli_session_prints_what_the_page_shows(backends: dict[str, str], tmp_path: Path) -> None:
    """Each command of the page, in order, as a user types them (a few seconds apart: the test
    waits for the state the next command's output shows)."""
    listener, process = await start(tmp_path)
    made = ""
    try:
        for command, expected in commands():
            if made:
                command = command.replace(PAGE_UUID, made)
            if "list-event-source-mappings" in command and "--function-name" in command:
                await listener.wait_state(made, "Enabled")
            if "delete-event-source-mapping" in command:
                await listener.wait_state(made, "Disabled")
            output = listener.run(listener.local(command))
            if not made and "create-event-source-mapping" in command:
                made = re.search(r'"UUID": "([0-9a-f-]+)"', output).group(1)  # type: ignore[union-attr]
            assert listener.as_page(output, made) == LAST_MODIFIED.sub('"LastModified": T', expected), command
    finally:
        stop(process)


async def test_the_pages_boto3_example_runs(backends: dict[str, str], tmp_path: Path) -> None:
    """The boto3 example, run as a script: every call succeeds and it prints the mapping it made."""
    listener, process = await start(tmp_path)
    try:
        source = listener.local(block("python")).replace('aws_secret_access_key="..."',
                                                          f'aws_secret_access_key="{listener.secret}"')
        (tmp_path / "example.py").write_text(source)
        done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=listener.env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.fullmatch(r"\[\('[0-9a-f-]{36}', 'Enabled'\)\]\n", done.stdout), done.stdout
    finally:
        stop(process)
