"""The schema tells clients how to authenticate and what errors to expect."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
async def schema(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_the_bearer_scheme_is_declared(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["BearerToken"]

    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/user/profile", "get"),
        ("/api/user/update", "patch"),
        ("/api/diagnostics/pings", "post"),
    ],
)
def test_protected_operations_require_the_bearer_scheme(
    schema: dict[str, Any], path: str, method: str
) -> None:
    operation = schema["paths"][path][method]

    assert operation["security"] == [{"BearerToken": []}]
    assert {"401", "429"} <= operation["responses"].keys()


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/auth/refresh"])
def test_auth_operations_are_public_and_document_their_problems(
    schema: dict[str, Any], path: str
) -> None:
    operation = schema["paths"][path]["post"]

    assert "security" not in operation
    problem = operation["responses"]["400"]["content"]["application/problem+json"]["schema"]
    assert problem["$ref"].endswith("/ProblemDocument")


def test_problem_document_lists_the_fields_every_error_has(schema: dict[str, Any]) -> None:
    problem = schema["components"]["schemas"]["ProblemDocument"]

    assert {"type", "title", "status", "detail", "code", "instance"} <= set(problem["required"])


def test_request_bodies_are_camel_case(schema: dict[str, Any]) -> None:
    register = schema["components"]["schemas"]["RegisterIn"]

    assert set(register["properties"]) == {"email", "password", "deviceId"}
