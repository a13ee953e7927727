"""An Amazon MSK cluster in a template (esm.templates.resources): never created by esm. Its ARN
comes from the stack, from the MSK API at an `aws.endpoints.kafka` that knows it by name, or is
built as AWS builds it (`cluster/<name>/<uuid>-1`)."""

from __future__ import annotations

import os
from typing import Any

from esm.templates.intrinsics import Unresolvable
from esm.templates.resources import Kind, Resources, endpoint_override, generated, stable_uuid


def _arn(resources: Resources, logical_id: str, name: str, arn_prefix: str) -> Any:
    if resources.mode == "stack":
        return resources.physical_id(logical_id)
    if resources.mode == "endpoints" and endpoint_override("kafka", resources.aws, os.environ):
        answer = resources.call(logical_id, "kafka", "list_clusters_v2", ClusterNameFilter=name)
        for cluster in answer.get("ClusterInfoList", []):
            if cluster.get("ClusterName") == name:
                return cluster["ClusterArn"]
        raise Unresolvable("", f"{logical_id}: esm never creates Amazon MSK clusters, and the MSK API at "
                               f"{resources.where('kafka')} has no cluster named {name!r}")
    return f"{arn_prefix}:cluster/{name}/{stable_uuid(resources.stack_name, logical_id)}-1"


CLUSTER = Kind("kafka", "ClusterName", "Arn", "cluster", attributes={"Arn": _arn}, default_name=generated)
