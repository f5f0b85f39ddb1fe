"""Variables of the common simple kinds, coerced without re-reading their definitions.

graphql-core's `get_variable_values` rebuilds each variable's signature on every request. For
an operation whose variables are all `ID`, `String`, `Int` or `Boolean` (nullable or not,
without defaults), the signatures are built once, and a value of exactly the expected Python
type is taken as graphql-core would take it. Anything else (another type, a default, a value
of another type, even one graphql-core would convert) returns None: the caller then asks
graphql-core, so the result is always graphql-core's.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

from graphql import (
    GraphQLError,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    VariableDefinitionNode,
    get_nullable_type,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource

INT_RANGE = range(-(2**31), 2**31)
EXPECTED: dict[str, type] = {"ID": str, "String": str, "Int": int, "Boolean": bool}


class SimpleVariable(NamedTuple):
    name: str
    signature: GraphQLVariableSignature
    expected: type
    required: bool


MISSING: Any = object()


def simple_variables(
    schema: GraphQLSchema, definitions: Sequence[VariableDefinitionNode]
) -> tuple[SimpleVariable, ...] | None:
    """The operation's variables when every one is a simple scalar without default, else None."""
    simple = []
    for definition in definitions:
        signature = get_variable_signature(schema, definition)
        if isinstance(signature, GraphQLError) or definition.default_value is not None:
            return None
        scalar = get_nullable_type(signature.type)  # a list stays a list: not simple
        expected = EXPECTED.get(scalar.name) if isinstance(scalar, GraphQLScalarType) else None
        if expected is None:
            return None
        required = isinstance(signature.type, GraphQLNonNull)
        simple.append(SimpleVariable(signature.name, signature, expected, required))
    return tuple(simple)


def coerce_simple(
    variables: tuple[SimpleVariable, ...], inputs: dict[str, Any]
) -> VariableValues | None:
    """The values as graphql-core would coerce them, or None to let graphql-core decide."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for name, signature, expected, required in variables:
        value = inputs.get(name, MISSING)
        if value is MISSING:
            if required:
                return None
            sources[name] = VariableValueSource(signature)
            continue
        sources[name] = VariableValueSource(signature, value)
        if value is None:
            if required:
                return None
        elif type(value) is not expected or (expected is int and value not in INT_RANGE):
            return None
        coerced[name] = value
    return VariableValues(sources, coerced)
