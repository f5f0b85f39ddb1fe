"""Variables of plain JSON shapes, coerced without re-reading their definitions.

graphql-core's `get_variable_values` rebuilds each variable's signature on every request, and
walks input objects generically: for `seedCatalog`'s 11,000 input objects that is about 0.1 s.
For an operation whose variables are all `ID`, `String`, `Int` or `Boolean` scalars, lists of
them, or input objects made of those (nullable or not, without a default on the variable), a
coercer is built once per type, and a value of exactly the expected JSON shape is taken as
graphql-core would take it: the same dict keys in the same order, input fields' defaults
filled in. Anything else (an enum, another scalar, a default, a recursive input type, a value
of another type, even one graphql-core would convert, an unknown key) returns None: the
caller then asks graphql-core, so the result is always graphql-core's.
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from graphql import (
    GraphQLError,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
    VariableDefinitionNode,
    get_nullable_type,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource
from graphql.type.definition import is_required_input_field
from graphql.utilities.coerce_input_value import coerce_default_value

INT_RANGE = range(-(2**31), 2**31)
EXPECTED: dict[str, type] = {"ID": str, "String": str, "Int": int, "Boolean": bool}

Coercer = Callable[[Any], Any]
"""A value as graphql-core coerces it, or `Declined` for anything not of the plain shape."""


class Declined(Exception):
    """A value (or a type) the shortcut leaves to graphql-core."""


class SimpleVariable(NamedTuple):
    name: str
    signature: GraphQLVariableSignature
    coerce: Coercer
    required: bool


MISSING: Any = object()


def _scalar(scalar: GraphQLScalarType) -> Coercer:
    expected = EXPECTED.get(scalar.name)
    if expected is None:
        raise Declined(scalar.name)
    if expected is int:

        def coerce_int(value: Any) -> Any:
            if type(value) is not int or value not in INT_RANGE:
                raise Declined
            return value

        return coerce_int

    def coerce(value: Any) -> Any:
        if type(value) is not expected:
            raise Declined
        return value

    return coerce


def _list(item_type: GraphQLInputType, seen: frozenset[str]) -> Coercer:
    if isinstance(item_type, GraphQLNonNull):  # the usual list: checked for nulls at once
        given = _given(item_type.of_type, seen)

        def coerce_non_null(value: Any) -> Any:
            if type(value) is not list or None in value:
                raise Declined
            return [given(element) for element in value]

        return coerce_non_null
    item = _coercer(item_type, seen)

    def coerce(value: Any) -> Any:
        if type(value) is not list:  # graphql-core takes a lone value as a list of one
            raise Declined
        return [item(element) for element in value]

    return coerce


class _InputField(NamedTuple):
    name: str
    out_name: str
    scalar: type | None  # a scalar's Python type, checked in place; else `coerce` is called
    nullable: bool
    coerce: Coercer
    default: Any
    required: bool


def _input_field(name: str, field: GraphQLInputField, seen: frozenset[str]) -> _InputField:
    nullable = get_nullable_type(field.type)
    scalar = EXPECTED.get(nullable.name) if isinstance(nullable, GraphQLScalarType) else None
    return _InputField(
        name,
        field.out_name or name,
        scalar,
        not isinstance(field.type, GraphQLNonNull),
        _coercer(field.type, seen),
        coerce_default_value(field),
        is_required_input_field(field),
    )


def _input_object(type_: GraphQLInputObjectType, seen: frozenset[str]) -> Coercer:
    if type_.is_one_of or type_.name in seen:
        raise Declined(type_.name)
    if type_.out_type is not GraphQLInputObjectType.out_type:  # builds its own values
        raise Declined(type_.name)
    inner = seen | {type_.name}
    fields = [_input_field(name, field, inner) for name, field in type_.fields.items()]
    names = frozenset(type_.fields)

    def coerce(value: Any) -> Any:
        if type(value) is not dict or not names.issuperset(value):
            raise Declined
        coerced = {}
        for name, out_name, scalar, nullable, coerce_field, default, required in fields:
            given = value.get(name, MISSING)
            if given is MISSING:
                if required:
                    raise Declined
                if default is not Undefined:
                    coerced[out_name] = default
            elif scalar is None:
                coerced[out_name] = coerce_field(given)
            elif given is None:
                if not nullable:
                    raise Declined
                coerced[out_name] = None
            elif type(given) is not scalar or (scalar is int and given not in INT_RANGE):
                raise Declined
            else:
                coerced[out_name] = given
        return coerced

    return coerce


def _coercer(type_: GraphQLInputType, seen: frozenset[str] = frozenset()) -> Coercer:
    """How values of `type_` are coerced; `Declined` for a type the shortcut does not cover."""
    if isinstance(type_, GraphQLNonNull):
        given = _given(type_.of_type, seen)

        def non_null(value: Any) -> Any:
            if value is None:
                raise Declined
            return given(value)

        return non_null
    nullable = _given(type_, seen)

    def or_null(value: Any) -> Any:
        return None if value is None else nullable(value)

    return or_null


def _given(type_: GraphQLInputType, seen: frozenset[str]) -> Coercer:
    """How a value other than null is coerced to the nullable type `type_`."""
    if isinstance(type_, GraphQLScalarType):
        return _scalar(type_)
    if isinstance(type_, GraphQLList):
        return _list(type_.of_type, seen)
    if isinstance(type_, GraphQLInputObjectType):
        return _input_object(type_, seen)
    raise Declined(str(type_))


def simple_variables(
    schema: GraphQLSchema, definitions: Sequence[VariableDefinitionNode]
) -> tuple[SimpleVariable, ...] | None:
    """The operation's variables when every one is of a plain shape without default, else None."""
    simple = []
    for definition in definitions:
        signature = get_variable_signature(schema, definition)
        if isinstance(signature, GraphQLError) or definition.default_value is not None:
            return None
        try:
            coerce = _coercer(signature.type)
        except Declined:
            return None
        required = isinstance(signature.type, GraphQLNonNull)
        simple.append(SimpleVariable(signature.name, signature, coerce, required))
    return tuple(simple)


def coerce_simple(
    variables: tuple[SimpleVariable, ...], inputs: dict[str, Any]
) -> VariableValues | None:
    """The values as graphql-core would coerce them, or None to let graphql-core decide."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for name, signature, coerce, required in variables:
        value = inputs.get(name, MISSING)
        if value is MISSING:
            if required:
                return None
            sources[name] = VariableValueSource(signature)
            continue
        sources[name] = VariableValueSource(signature, value)
        try:
            coerced[name] = coerce(value)
        except Declined:
            return None
    return VariableValues(sources, coerced)
