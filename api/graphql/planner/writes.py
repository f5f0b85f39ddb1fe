"""`createBook` planned as one statement: insert the row and build the payload in Postgres.

Only the happy path is planned. Input that the ordinary path would refuse (a malformed id,
text that fails validation) raises `Rejected`, and an author that does not exist makes the
statement insert nothing and return no row: in both cases the ordinary path answers, with
its `userErrors`, and nothing was written here.
"""

from typing import Any

from graphql import FieldNode, FragmentDefinitionNode, GraphQLSchema, OperationDefinitionNode
from graphql.execution.values import VariableValues

from api.catalog.problems import Problem
from api.catalog.text import clean_text
from api.db.models import TITLE_MAX
from api.graphql.planner.compiler import (
    BOOK,
    Compilation,
    NotPlannable,
    Rejected,
    database_key,
    node_object,
    response_body,
    root_of,
)


def compile_create_book(
    operation: OperationDefinitionNode,
    *,
    schema: GraphQLSchema,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues | None,
) -> tuple[str, list[Any]]:
    c = Compilation(schema, fragments, variables, 0, 0, writing=True)
    fields = c.collect([operation.selection_set], "Mutation")
    if len(fields) != 1 or next(iter(fields.values()))[0].name.value != "createBook":
        raise NotPlannable("only a lone createBook is planned")
    inserted = c.alias()
    values: list[str] = []  # the parameters of author_id and title, once known

    def create_book(name: str, nodes: list[FieldNode]) -> str:
        given = c.arguments("Mutation", nodes[0])["input"]
        author_id = database_key(given["authorId"], "Author")
        problems: list[Problem] = []
        title = clean_text(
            given["title"], field=("title",), max_length=TITLE_MAX, problems=problems
        )
        if problems or title is None:
            raise Rejected("the title is refused")
        values.extend([c.param(author_id), c.param(title)])

        def payload(field_name: str, field_nodes: list[FieldNode]) -> str:
            if field_name == "book":
                return node_object(c, BOOK, field_nodes, inserted)
            if field_name == "userErrors":
                return "'[]'::json"
            raise NotPlannable(field_name)

        return c.json_object("CreateBookPayload", nodes, payload)

    data = c.json_object("Mutation", [root_of(operation)], create_book)
    author, title = values
    return (
        f"WITH {inserted} AS (INSERT INTO books (author_id, title) "
        f"SELECT {author}, {title} WHERE EXISTS (SELECT 1 FROM authors WHERE id = {author}) "
        f"RETURNING *) SELECT {response_body(data)} FROM {inserted}",
        c.params,
    )
