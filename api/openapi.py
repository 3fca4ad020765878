"""Where the generated OpenAPI schema would not say what the api does, and the corrections.

Found by the schema fuzzer (tests/fuzz, docs/fuzzing.md): each gap was a request the schema
allowed and the api refused, or an answer the schema did not describe.

- Litestar's msgspec plugin (2.x) leaves out two rules msgspec enforces: `forbid_unknown_fields`
  (`additionalProperties: false`) and a bound of 0 on an optional number
  (`Annotated[int, Meta(gt=0)] | None` loses `exclusiveMinimum: 0`: Litestar copies a bound only
  when it is truthy). `StrictStructSchemaPlugin` adds both.
- A route that answers pre-encoded bytes (an idempotent replay, a cached listing) is documented
  as a string; `success_body` names the struct the bytes hold.
- Litestar marks every request body required; `OptionalBodyOperation` says when it is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody, Schema

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

BOUNDS = {"ge": "minimum", "gt": "exclusive_minimum", "le": "maximum", "lt": "exclusive_maximum"}


class StrictStructSchemaPlugin(StructSchemaPlugin):
    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        assert isinstance(info, msgspec.inspect.StructType)
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        for field in info.fields:
            prop = (schema.properties or {}).get(field.encode_name)
            if isinstance(prop, Schema) and (number := _number_type(field.type)):
                for bound, key in BOUNDS.items():
                    value = getattr(number, bound)
                    if value is not None and getattr(prop, key) is None:
                        setattr(prop, key, value)
        return schema


def _number_type(
    type_: msgspec.inspect.Type,
) -> msgspec.inspect.IntType | msgspec.inspect.FloatType | None:
    """The constrained number inside `type_`, also when it is optional (`int | None`)."""
    members = type_.types if isinstance(type_, msgspec.inspect.UnionType) else (type_,)
    for member in members:
        inner = member.type if isinstance(member, msgspec.inspect.Metadata) else member
        if isinstance(inner, msgspec.inspect.IntType | msgspec.inspect.FloatType):
            return inner
    return None


def success_body(status: int, body: Any, description: str) -> dict[int, ResponseSpec]:
    """The `responses` entry for a route that answers `body` as JSON in a `Response[bytes]`
    (or `Response[Any]`), which Litestar cannot see through."""
    return {status: ResponseSpec(body, description=description, generate_examples=False)}


@dataclass
class OptionalBodyOperation(Operation):
    """For a route whose body may be left out (`data: JSONBody[X | None] = None`)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False
