"""`esm: {parallelization_factor: N}` on a Kafka mapping (issue 12 point 3): validated with the field
named, refused for other sources, and read into the pipeline's lane count (esm.config.pipeline)."""

from __future__ import annotations

import pytest

from esm.config.loading import parse_config
from esm.config.pipeline import PipelineSettings
from tests.unit.test_config import config_text, kafka, kinesis, one_problem, sqs


@pytest.mark.parametrize("value", [0, 11, -1, 2.5, "4", True, None])
def test_parallelization_factor_must_be_an_integer_from_1_to_10(value):
    assert one_problem(kafka(esm={"parallelization_factor": value})).startswith(
        "event_source_mappings[0].esm.parallelization_factor: must be an integer from 1 to 10")


@pytest.mark.parametrize("mapping", [sqs, kinesis], ids=["sqs", "kinesis"])
def test_parallelization_factor_is_refused_for_other_sources(mapping):
    problem = one_problem(mapping(esm={"parallelization_factor": 2}))
    assert problem.startswith("event_source_mappings[0].esm.parallelization_factor: is only for Kafka event sources")
    assert "ParallelizationFactor" in problem


@pytest.mark.parametrize("given, lanes", [({}, 1), ({"esm": {"parallelization_factor": 1}}, 1),
                                          ({"esm": {"parallelization_factor": 4}}, 4),
                                          ({"esm": {"parallelization_factor": 10}}, 10)])
def test_a_kafka_mapping_gets_that_many_lanes(given, lanes):
    mapping = parse_config(config_text(kafka(**given)), environ={}).mappings[0]
    assert PipelineSettings.read(mapping).lanes == lanes
