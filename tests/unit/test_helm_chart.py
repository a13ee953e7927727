"""The Helm chart (deploy/helm/esm/): `helm lint` passes and `helm template` renders each of the three
ways esm runs (a Deployment of competing consumers, a native sidecar beside a function, a Deployment
per mapping group) into objects that validate, strictly, against the Kubernetes schemas
kubernetes-validate bundles (nothing fetched at run time); the config each pod reads is a valid esm
config; the alert rules and the dashboard are those of deploy/ (one source), and the plain manifests
of deploy/kubernetes/ are the chart's rendering (scripts/k8s-manifests), byte for byte.

Helm comes from scripts/helm (its Go module, built once); the tests find it through HELM, PATH or
that script's cache, and are skipped where none is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from esm.config.loading import parse_config

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "esm"
CORE_KINDS = {"ConfigMap", "Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"}
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")  # native sidecars need 1.29

SQS = "arn:aws:sqs:us-east-1:123456789012:orders"
STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/payments"
MAPPINGS = [
    {"FunctionName": "orders", "EventSourceArn": SQS, "BatchSize": 10, "esm": {"name": "orders"}},
    {"FunctionName": "orders", "EventSourceArn": STREAM, "StartingPosition": "LATEST", "esm": {"name": "payments"}},
    {"FunctionName": "orders", "Topics": ["audit"], "StartingPosition": "LATEST", "esm": {"name": "audit"},
     "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka.kafka.svc:9092"]}},
     "SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"},
                                    {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}],
     "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "esm-audit"}},
]
EVERYTHING = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
              "dashboard": {"enabled": True}, "keda": {"enabled": True},
              "api": {"listen": "0.0.0.0:9001", "credentialsSecret": "esm-api"},
              "config": {"event_source_mappings": MAPPINGS,
                         "checkpoints": {"dynamodb": {"table": "esm-leases"}}}}
MODES = {
    "deployment": {**EVERYTHING, "mode": "deployment"},
    "sidecar": {**EVERYTHING, "mode": "sidecar", "replicas": 1,
                "config": {**EVERYTHING["config"], "event_source_mappings": MAPPINGS[:1],
                           "functions": {"orders": {"url": "http://127.0.0.1:8080/2015-03-31/functions/function/invocations"}}}},
    "groups": {**EVERYTHING, "mode": "groups",
               "groups": [{"name": "queues", "replicas": 3, "mappings": ["orders"]},
                          {"name": "streams", "mappings": ["payments", "audit"]}]},
}


def find_helm() -> str | None:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    if shutil.which("helm"):
        return shutil.which("helm")
    version = re.search(r"^HELM_VERSION=(\S+)", (ROOT / "scripts" / "helm").read_text(), re.M)
    assert version is not None
    cache = Path(os.environ.get("ESM_TOOLS_DIR", Path.home() / ".cache" / "esm-tools"))
    cached = cache / f"helm-{version.group(1)}" / "bin" / "helm"
    return str(cached) if cached.exists() else None


@pytest.fixture(scope="module")
def helm() -> str:
    found = find_helm()
    if found is None:
        if os.environ.get("CI") or os.environ.get("ESM_REQUIRE_BACKENDS"):
            pytest.fail("helm is not installed: scripts/test builds it with scripts/helm (needs Go)")
        pytest.skip("helm is not installed (scripts/helm builds it)")
    return found


def values_file(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def render(helm: str, tmp_path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    run = subprocess.run([helm, "template", "esm", str(CHART), "-f", str(values_file(tmp_path, values))],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


@pytest.mark.parametrize("mode", MODES)
def test_helm_lint_passes(helm, tmp_path, mode):
    run = subprocess.run([helm, "lint", "--strict", str(CHART), "-f", str(values_file(tmp_path, MODES[mode]))],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("mode", MODES)
def test_every_rendered_object_is_valid_kubernetes(helm, tmp_path, mode):
    """Each core-kind object validates strictly for the oldest and newest Kubernetes supported."""
    from kubernetes_validate.utils import validate

    documents = render(helm, tmp_path, MODES[mode])
    assert {d["kind"] for d in documents} >= CORE_KINDS | {"ServiceMonitor", "PrometheusRule", "ScaledObject"}
    for document in documents:
        if document["kind"] in CORE_KINDS:
            for version in KUBERNETES_VERSIONS:
                validate(document, version, strict=True)


@pytest.mark.parametrize("mode", MODES)
def test_each_pod_reads_a_valid_esm_config_with_its_own_mappings(helm, tmp_path, mode):
    """The ConfigMap a Deployment mounts is a valid esm config (what `esm validate` checks), listening
    on the pod IP where the probes and Prometheus reach it; a group gets only the mappings it names."""
    documents = render(helm, tmp_path, MODES[mode])
    configs = {c["metadata"]["name"]: c for c in of_kind(documents, "ConfigMap") if "config.yaml" in c["data"]}
    names = {}
    for deployment in of_kind(documents, "Deployment"):
        volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
        config = parse_config(configs[volume["configMap"]["name"]]["data"]["config.yaml"], base_dir=".")
        assert config.metrics.listen == "0.0.0.0:9090"
        assert config.api is not None and config.api.credentials is not None
        names[deployment["metadata"]["name"]] = sorted(m.name for m in config.mappings)
    if mode == "groups":
        assert names == {"esm-queues": ["orders"], "esm-streams": ["audit", "payments"]}
    else:
        assert list(names) == ["esm"]


@pytest.mark.parametrize("mode", MODES)
def test_the_esm_container_is_non_root_read_only_and_probed(helm, tmp_path, mode):
    documents = render(helm, tmp_path, MODES[mode])
    for deployment in of_kind(documents, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        containers = pod.get("initContainers", []) + pod["containers"]
        [esm] = [c for c in containers if c["name"] == "esm"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert esm["securityContext"]["readOnlyRootFilesystem"] is True
        assert esm["securityContext"]["allowPrivilegeEscalation"] is False
        assert esm["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert esm["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert esm["resources"]["limits"]["memory"]
        secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in esm["env"] if "valueFrom" in e}
        assert secrets == {"ESM_API_ACCESS_KEY_ID": "esm-api", "ESM_API_SECRET_ACCESS_KEY": "esm-api"}
        if mode == "sidecar":
            # The function is the native sidecar (an init container that keeps running, with a
            # startup probe): it starts before esm and stops after it, so esm's drain at shutdown
            # still reaches it.
            [function] = pod["initContainers"]
            assert function["name"] == "function" and function["restartPolicy"] == "Always"
            assert function["startupProbe"]["tcpSocket"]["port"] == "function"
            assert [c["name"] for c in pod["containers"]] == ["esm"]


def test_keda_triggers_follow_each_groups_source(helm, tmp_path):
    """SQS scales on queue length, Kinesis on shard count, Kafka on the consumer group's lag."""
    values = {**MODES["groups"], "groups": [{"name": "q", "mappings": ["orders"]},
                                             {"name": "s", "mappings": ["payments"]},
                                             {"name": "k", "mappings": ["audit"]}]}
    triggers = {o["spec"]["scaleTargetRef"]["name"]: o["spec"]["triggers"][0]
                for o in of_kind(render(helm, tmp_path, values), "ScaledObject")}
    assert triggers["esm-q"]["type"] == "aws-sqs-queue"
    assert triggers["esm-q"]["metadata"]["queueURL"] == "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
    assert triggers["esm-s"]["type"] == "aws-kinesis-stream"
    assert triggers["esm-s"]["metadata"]["streamName"] == "payments"
    assert triggers["esm-k"]["type"] == "kafka"
    assert triggers["esm-k"]["metadata"]["consumerGroup"] == "esm-audit"


def test_rules_and_dashboard_are_those_of_deploy(helm, tmp_path):
    documents = render(helm, tmp_path, MODES["deployment"])
    [rule] = of_kind(documents, "PrometheusRule")
    raw = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml").read_text())
    assert rule["spec"] == raw["spec"]
    [dashboard] = [c for c in of_kind(documents, "ConfigMap") if "esm-dashboard.json" in c["data"]]
    assert json.loads(dashboard["data"]["esm-dashboard.json"]) == json.loads(
        (ROOT / "deploy" / "grafana" / "esm-dashboard.json").read_text())


def test_state_is_an_emptydir_unless_persistence_is_on(helm, tmp_path):
    """By default the `state` volume (/var/lib/esm, where SQLite checkpoints land) goes with the pod
    and the Deployment rolls pod by pod; no claim is made."""
    documents = render(helm, tmp_path, MODES["deployment"])
    assert of_kind(documents, "PersistentVolumeClaim") == []
    [deployment] = of_kind(documents, "Deployment")
    [state] = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "state"]
    assert "emptyDir" in state and deployment["spec"]["strategy"]["type"] == "RollingUpdate"


@pytest.mark.parametrize("mode", ["deployment", "groups"])
def test_persistence_keeps_one_replicas_sqlite_checkpoints_on_a_claim(helm, tmp_path, mode):
    """Issue 28.4: with persistence on, each Deployment's `state` volume is its own
    PersistentVolumeClaim (valid Kubernetes, kept on uninstall), mounted where the image's working
    directory puts SQLite checkpoints, and the Deployment rolls with Recreate (one pod holds the
    claim and the SQLite file at a time)."""
    from kubernetes_validate.utils import validate

    values = {**MODES[mode], "replicas": 1, "keda": {"enabled": False}, "persistence": {"enabled": True, "size": "2Gi"},
              "config": {**MODES[mode]["config"], "checkpoints": {}}}
    if mode == "groups":
        values["groups"] = [{"name": g["name"], "mappings": g["mappings"]} for g in values["groups"]]
    documents = render(helm, tmp_path, values)
    claims = {c["metadata"]["name"]: c for c in of_kind(documents, "PersistentVolumeClaim")}
    deployments = of_kind(documents, "Deployment")
    assert len(claims) == len(deployments) >= 1
    for claim in claims.values():
        for version in KUBERNETES_VERSIONS:
            validate(claim, version, strict=True)
        assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        [state] = [v for v in pod["volumes"] if v["name"] == "state"]
        assert state["persistentVolumeClaim"]["claimName"] in claims
        [esm] = [c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == "esm"]
        assert {"name": "state", "mountPath": "/var/lib/esm"} in esm["volumeMounts"]
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert deployment["spec"]["replicas"] == 1


@pytest.mark.parametrize("extra", [{"replicas": 2}, {"replicas": 1, "keda": {"enabled": True}}],
                         ids=["two-replicas", "keda"])
def test_persistence_refuses_more_than_one_replica(helm, tmp_path, extra):
    """Two pods must not share one SQLite file (nor can a ReadWriteOnce claim be mounted by both):
    persistence with several replicas, or with KEDA scaling, fails to render and names the
    DynamoDB store instead."""
    values = {**MODES["deployment"], "persistence": {"enabled": True}, **extra}
    run = subprocess.run([helm, "template", "esm", str(CHART), "-f", str(values_file(tmp_path, values))],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode != 0
    assert "checkpoints.dynamodb" in run.stderr


SQLITE = {"checkpoints": {}}  # the chart's default store: SQLite under /var/lib/esm


@pytest.mark.parametrize("values, refused", [
    ({"mode": "deployment", "replicas": 2, "config": {**SQLITE, "event_source_mappings": MAPPINGS[1:2]}},
     "esm keeps mapping payments in SQLite"),
    ({"mode": "deployment", "replicas": 1, "keda": {"enabled": True},
      "config": {**SQLITE, "event_source_mappings": MAPPINGS[1:2]}}, "with 1 replicas and KEDA"),
    ({"mode": "deployment", "replicas": 2, "api": {"listen": "0.0.0.0:9001", "credentialsSecret": "esm-api"},
      "config": {**SQLITE, "event_source_mappings": MAPPINGS[:1]}}, "the control API's mappings in SQLite"),
    ({"mode": "groups", "replicas": 1, "config": {"checkpoints": {"sqlite": "/var/lib/esm/c.db"},
                                                  "event_source_mappings": MAPPINGS},
      "groups": [{"name": "queues", "replicas": 3, "mappings": ["orders"]},
                 {"name": "streams", "replicas": 2, "mappings": ["payments"]}]}, "esm-streams keeps mapping payments"),
], ids=["stream-two-replicas", "stream-keda", "api-two-replicas", "groups-stream-group"])
def test_sqlite_state_refuses_more_than_one_replica(helm, tmp_path, values, refused):
    """Issue 28.4: stream positions and API mappings in SQLite are one pod's own file, so several
    replicas (or KEDA) would each read every shard from their own positions (every record
    processed once per pod) or keep their own API mappings: the chart fails to render, naming the
    unit, what it stores and the DynamoDB store instead."""
    run = subprocess.run([helm, "template", "esm", str(CHART), "-f", str(values_file(tmp_path, values))],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode != 0
    assert refused in run.stderr and "config.checkpoints: {dynamodb: {table: ...}}" in run.stderr, run.stderr


def test_sqlite_with_several_replicas_is_fine_where_nothing_is_stored(helm, tmp_path):
    """SQS and Kafka keep their positions in the queue and the group: several replicas on the
    default SQLite store render (the shipped standalone example is two such replicas), and so do
    the queues group's three replicas beside a one-replica streams group."""
    values = {"mode": "groups", "replicas": 1, "config": {**SQLITE, "event_source_mappings": MAPPINGS},
              "groups": [{"name": "queues", "replicas": 3, "mappings": ["orders", "audit"]},
                         {"name": "streams", "mappings": ["payments"]}]}
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in of_kind(render(helm, tmp_path, values), "Deployment")}
    assert replicas == {"esm-queues": 3, "esm-streams": 1}


def notes(helm: str, tmp_path: Path, values: dict[str, Any]) -> str:
    """NOTES.txt as `helm install` prints it. `helm template` skips NOTES.txt and `install
    --dry-run` needs a cluster, so a copy of the chart renders the same text through `tpl` (the
    chart's own helpers included) into a ConfigMap."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, symlinks=False)
    (copy / "templates" / "NOTES.txt").rename(copy / "files" / "notes.txt")
    (copy / "templates" / "notes.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n'
        'data:\n  notes: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}\n')
    run = subprocess.run([helm, "template", "esm", str(copy), "-f", str(values_file(tmp_path, values)),
                          "--show-only", "templates/notes.yaml"], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    return yaml.safe_load(run.stdout)["data"]["notes"]


@pytest.mark.parametrize("store, warned", [({"checkpoints": {}}, True), ({"checkpoints": {}, "persistence": True}, False),
                                           ({"checkpoints": {"dynamodb": {"table": "esm-leases"}}}, False)],
                         ids=["sqlite-emptydir", "sqlite-claim", "dynamodb"])
def test_notes_warn_when_stream_positions_go_with_the_pod(helm, tmp_path, store, warned):
    """Issue 28.4: one replica with a stream mapping in SQLite on the default emptyDir installs (a
    trial may want that) but `helm install` says the positions go with the pod and what keeps them;
    a claim or the DynamoDB store keeps them, and then nothing is said."""
    persistence = store.pop("persistence", False)
    values = {"mode": "deployment", "replicas": 1, "persistence": {"enabled": persistence},
              "config": {**store, "event_source_mappings": MAPPINGS[1:2]}}
    text = notes(helm, tmp_path, values)
    assert "esm status --url http://127.0.0.1:9090" in text
    warning = "WARNING: esm keeps mapping payments in SQLite on an emptyDir"
    assert (warning in text) == warned, text


def test_the_operations_pages_install_line_renders(helm, tmp_path):
    """docs/operations.md's `helm install` line, as `helm template` (no cluster here): its `--set`
    keys exist in the chart and do what the page says (the image's repository, the alert rules)."""
    page = (ROOT / "docs" / "operations.md").read_text().split("\n## Helm chart\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", page, re.S).group(1)
    line = re.search(r"^helm install .*$", block.replace("\\\n", " "), re.M).group(0)  # continuations joined
    args = line.split()
    assert args[:3] == ["helm", "install", "esm"] and args[3] == "deploy/helm/esm", args
    values = tmp_path / "my-values.yaml"
    values.write_text("{}\n")
    run = subprocess.run([helm, "template", "esm", str(CHART), *[str(values) if a == "my-values.yaml" else a
                                                              for a in args[4:]]],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    documents = [d for d in yaml.safe_load_all(run.stdout) if d]
    [deployment] = of_kind(documents, "Deployment")
    [esm] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "esm"]
    assert esm["image"].startswith("registry.example.com/esm:")
    assert of_kind(documents, "PrometheusRule")


def test_plain_manifests_are_what_the_chart_renders(helm, tmp_path):
    """One source of truth: deploy/kubernetes/ holds exactly what scripts/k8s-manifests writes from
    the chart today (a change to the chart without rerunning it, or an edit by hand, fails here)."""
    import sys

    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "k8s-manifests"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "HELM": helm})
    assert run.returncode == 0, run.stderr
    written = {p.name: p.read_text() for p in tmp_path.glob("*.yaml")}
    shipped = {p.name: p.read_text() for p in (ROOT / "deploy" / "kubernetes").glob("*.yaml")}
    assert sorted(written) == sorted(shipped)
    stale = [name for name in shipped if written[name] != shipped[name]]
    assert not stale, f"rerun scripts/k8s-manifests: {stale} differ from the chart's rendering"
