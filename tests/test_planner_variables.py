"""The planner's shortcut for simple variables agrees with graphql-core whenever it answers."""

import itertools
from typing import Any

from graphql import FieldNode, OperationDefinitionNode, parse
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from api.graphql.planner.binding import argument_sources, read_sources
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


INPUT_VALUES: list[Any] = [
    None, "", "x", 7, 2**31, 1.0, True, [], {}, ["a"], [None], [{}],
    {"title": "t"}, {"title": None}, {"title": "t", "publishedYear": 2000},
    {"title": "t", "publishedYear": "2000"}, {"title": "t", "nope": 1},
    {"name": "a"}, {"name": "a", "books": [{"title": "t"}]}, {"name": "a", "books": {"title": "t"}},
    {"name": "a", "bio": None, "country": "c", "books": []}, {"name": "a", "books": None},
    {"authorId": "x", "title": "t"}, {"authorId": 1, "title": "t"},
]  # fmt: skip


def plain_inputs(one: Any, two: Any) -> list[tuple[str, dict[str, Any]]]:
    """Documents with input object and list variables, and values for them made of two."""
    given = [v for v in (one, two) if v is not MISSING]
    seed = "mutation($s: SeedCatalogInput!) { __typename }"
    cases: list[tuple[str, dict[str, Any]]] = [
        (seed, {"s": {"authors": given}}),
        (seed, {"s": {"authors": given[0] if given else []}}),
        (seed, {"s": {"authors": [{"name": "n", "books": given}], "skipExistingAuthors": True}}),
        ("mutation($ids: [ID!]) { __typename }", {"ids": [*given, "QQ=="]}),
    ]
    if one is not MISSING:
        cases.append(("mutation($c: CreateBookInput) { __typename }", {"c": one}))
    return cases


def test_input_objects_and_lists_answered_as_graphql_core_or_not_at_all() -> None:
    """Input objects (defaults filled in, keys in the type's order) and lists, nested."""
    answered = 0
    for one, two in itertools.product([*INPUT_VALUES, MISSING], repeat=2):
        for document, inputs in plain_inputs(one, two):
            (operation,) = parse(document).definitions
            assert isinstance(operation, OperationDefinitionNode)
            definitions = operation.variable_definitions or ()
            simple = simple_variables(schema.graphql_schema, definitions)
            assert simple is not None
            shortcut = coerce_simple(simple, inputs)
            expected = get_variable_values(schema.graphql_schema, definitions, inputs)
            if shortcut is not None:
                answered += 1
                assert isinstance(expected, VariableValues), (inputs, expected)
                assert shortcut.coerced == expected.coerced, inputs
                assert repr(shortcut.coerced) == repr(expected.coerced), inputs  # key order
    assert answered > 100


def test_other_kinds_of_variable_are_left_to_graphql_core() -> None:
    for document in (
        "query($o: AuthorOrderBy) { __typename }",
        "query($f: [AuthorOrderBy]) { __typename }",
        "query($n: Int = 3) { __typename }",
        "query($ids: [Float!]) { __typename }",
    ):
        (operation,) = parse(document).definitions
        assert isinstance(operation, OperationDefinitionNode)
        assert simple_variables(schema.graphql_schema, operation.variable_definitions or ()) is None


ARGUMENTS = [  # what a connection's arguments can be written as: a variable, a literal, nothing
    ("first", ["$first", "3", None]),
    ("after", ["$after", '"QUZURVI"', None]),
    ("orderBy", ["$order", "NAME_DESC", None]),
    ("filter", ['{country: "Japan"}', None]),
]


def test_arguments_read_without_graphql_core_are_what_graphql_core_reads() -> None:
    """Per field, `argument_sources` is worked out once; whenever `read_sources` answers, it
    answers what `get_argument_values` does, for values given, null or left out."""
    definition = schema.graphql_schema.query_type.fields["authors"]  # type: ignore[union-attr]
    header = "$first: Int, $after: String, $order: AuthorOrderBy"
    inputs: list[dict[str, Any]] = [
        {},
        {"first": 2, "after": "QUZURVI", "order": "NAME_ASC"},
        {"first": None, "after": None, "order": None},
        {"first": 5},
    ]
    read = 0
    for written in itertools.product(*(forms for _, forms in ARGUMENTS)):
        given = [f"{name}: {form}" for (name, _), form in zip(ARGUMENTS, written, strict=True)]
        present = [g for g in given if not g.endswith("None")]
        arguments = f"({', '.join(present)})" if present else ""
        (operation,) = parse(
            f"query({header}) {{ authors{arguments} {{ totalCount }} }}"
        ).definitions
        assert isinstance(operation, OperationDefinitionNode)
        (field,) = operation.selection_set.selections
        assert isinstance(field, FieldNode)
        sources = argument_sources(definition, field)
        for values in inputs:
            variables = get_variable_values(
                schema.graphql_schema, operation.variable_definitions or (), values
            )
            assert isinstance(variables, VariableValues)
            shortcut = read_sources(sources, variables.coerced) if sources is not None else None
            if shortcut is not None:
                read += 1
                assert shortcut == get_argument_values(definition, field, variables), arguments
    assert read > 50  # plain variables and literals are read without graphql-core
