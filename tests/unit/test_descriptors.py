"""Each source's descriptor (esm.descriptor), read through the registry (docs/design.md "Layout")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from esm import registry

ROOT = Path(__file__).resolve().parents[2]


def test_every_registered_source_has_a_descriptor_of_its_own_kind() -> None:
    """The registry key is the descriptor's kind, and every path a descriptor names resolves."""
    for kind in registry.SOURCES:
        descriptor = registry.descriptor(kind)
        assert descriptor.kind == kind
        assert callable(registry.import_path(descriptor.rules))
        assert registry.source(kind).__name__
        for _, path in descriptor.templates.resources:
            assert registry.import_path(path).service
        for path in (descriptor.arn_check, descriptor.extension_rules):
            assert path is None or callable(registry.import_path(path))


def test_reading_every_descriptor_loads_no_source_library() -> None:
    """Descriptors stay light: reading them (config checks, `esm status`) never imports the
    libraries a source runs on, nor the source classes."""
    code = ("import sys\nfrom esm import registry\nregistry.descriptors()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('aiokafka', 'aiobotocore', 'botocore', 'jmespath') or m.endswith('.source')))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_conformance_adapters_named_by_descriptors_exist() -> None:
    """A descriptor's conformance adapter (`tests.conformance.<module>:<Class>`) is a class of that
    module (read, not imported: the adapters import the test backends' clients)."""
    named = [d.conformance for d in registry.descriptors() if d.conformance]
    assert named, "no source names its conformance adapter"
    for path in named:
        module, _, name = path.partition(":")
        assert module.startswith("tests.conformance."), path
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
        assert name in {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}, path
