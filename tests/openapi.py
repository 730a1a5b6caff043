"""Checking response bodies against OpenAI's OpenAPI schemas (vendored in tests/reference/)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REFERENCE = Path(__file__).parent / "reference"
_ROOT_URI = "urn:openapi"


def _with_nullable(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema says it. Some schemas of the spec (RunObject,
    RunStepObject) still use it, and Draft 2020-12 ignores it, which would refuse every null there."""
    if isinstance(node, list):
        return [_with_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _with_nullable(value) for key, value in node.items()}
    if node.pop("nullable", False) is not True:
        return node
    if isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
        return node
    return {"anyOf": [node, {"type": "null"}]}


@cache
def _registry(spec: str) -> Registry[Any]:
    document = _with_nullable(yaml.safe_load((REFERENCE / spec).read_text()))
    return Registry().with_resource(_ROOT_URI, Resource(document, specification=DRAFT202012))


def schema_errors(component: str, instance: Any, spec: str = "assistants-v2.yaml") -> list[str]:
    """Every way ``instance`` breaks ``#/components/schemas/<component>``: [] when it conforms."""
    validator = Draft202012Validator(
        {"$ref": f"{_ROOT_URI}#/components/schemas/{component}"}, registry=_registry(spec)
    )
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def assert_schema(component: str, instance: Any, spec: str = "assistants-v2.yaml") -> None:
    errors = schema_errors(component, instance, spec)
    assert not errors, f"response does not match {component}:\n" + "\n".join(errors)


def required_keys(component: str, spec: str = "assistants-v2.yaml") -> set[str]:
    document = _registry(spec).contents(_ROOT_URI)
    return set(document["components"]["schemas"][component].get("required", []))
