"""The OpenAPI document of `/api/v1`: valid OpenAPI 3.1, and it describes every route and method the URL
configuration serves there (a route added without its description fails here)."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db
PREFIX = "api/v1/"


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def _served_routes() -> dict[str, object]:
    routes = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(PREFIX) and not route.startswith(PREFIX + "^"):
            path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route[len(PREFIX):])
            routes[path] = pattern.callback
    return routes


def _methods_of(client, path: str) -> set[str]:
    """What the view answers to: the `Allow` header of a method it refuses (every API view lists its methods)."""
    concrete = re.sub(r"\{\w+\}", "general", path)
    response = client.generic("TRACE", f"/api/v1{concrete}")
    allow = response.headers.get("Allow", "GET")
    return {m.strip().lower() for m in allow.split(",") if m.strip() and m.strip() != "OPTIONS"}


def test_the_schema_is_valid_openapi(client):
    document = client.get("/api/v1/schema").json()
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_api_v1_route_and_method_is_in_the_schema(client):
    documented = client.get("/api/v1/schema").json()["paths"]
    served = _served_routes()
    assert {"/messages", "/stream", "/topics/{name}/messages", "/peers", "/members"} <= set(served)
    missing = sorted(set(served) - set(documented))
    assert not missing, f"routes without an OpenAPI entry: {missing}"
    for path in served:
        methods = _methods_of(client, path)
        assert methods <= set(documented[path]), f"{path}: {methods - set(documented[path])} undocumented"
    assert not set(documented) - set(served), "the schema lists routes that do not exist"


def test_the_docs_page_lists_every_route_and_error_code(client):
    page = client.get("/api/v1/docs").content.decode()
    for path in client.get("/api/v1/schema").json()["paths"]:
        assert f"/api/v1{path}" in page
    assert "api_key_missing_capability" in page and "api_key_unbound" in page
