"""The planner's shortcut for simple variables agrees with graphql-core whenever it answers."""

import itertools
from typing import Any

from graphql import OperationDefinitionNode, parse
from graphql.execution.values import VariableValues, get_variable_values

from api.graphql.planner.variables import coerce_simple, simple_variables
from api.graphql.schema import schema

DOCUMENT = "query($id: ID!, $first: Int, $after: String, $yes: Boolean!) { __typename }"
VALUES: list[Any] = [
    None, 0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 1.0, 1.5, True, False,
    "", "x", "1", [], {}, ["a"], {"a": 1},
]  # fmt: skip
MISSING = object()


def test_the_shortcut_answers_as_graphql_core_or_not_at_all() -> None:
    (operation,) = parse(DOCUMENT).definitions
    assert isinstance(operation, OperationDefinitionNode)
    definitions = operation.variable_definitions or ()
    simple = simple_variables(schema.graphql_schema, definitions)
    assert simple is not None
    answered = 0
    for values in itertools.product([*VALUES, MISSING], repeat=2):
        for names in itertools.permutations(["id", "first", "after", "yes"], 2):
            inputs = {"id": "QXV0aG9yOjE=", "yes": True}
            inputs.update({n: v for n, v in zip(names, values, strict=True) if v is not MISSING})
            for name, value in zip(names, values, strict=True):
                if value is MISSING:
                    inputs.pop(name, None)
            shortcut = coerce_simple(simple, inputs)
            expected = get_variable_values(schema.graphql_schema, definitions, inputs)
            if shortcut is not None:
                answered += 1
                assert isinstance(expected, VariableValues), (inputs, expected)
                assert shortcut.coerced == expected.coerced, inputs
    assert answered > 100  # the shortcut is taken for the ordinary, valid requests


def test_other_kinds_of_variable_are_left_to_graphql_core() -> None:
    for document in (
        "query($o: AuthorOrderBy) { __typename }",
        "query($f: AuthorFilter) { __typename }",
        "query($n: Int = 3) { __typename }",
        "query($ids: [ID!]) { __typename }",
    ):
        (operation,) = parse(document).definitions
        assert isinstance(operation, OperationDefinitionNode)
        assert simple_variables(schema.graphql_schema, operation.variable_definitions or ()) is None
