"""Event sources: one package per service, each with a `descriptor.py` that `esm.registry.SOURCES`
names (esm.descriptor: what the shared modules know of the source) and the source class it names.

A source knows its service and nothing about functions (docs/design.md "Layout"). This package
imports nothing, so reading a descriptor never loads a source's libraries.
"""
