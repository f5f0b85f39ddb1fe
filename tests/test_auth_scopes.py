"""The access rule: what each operation of the schema needs, and which callers have it."""

import pytest

from api.auth import ANONYMOUS, Access, Caller, CallerKind, Refusal, Scope, refusal
from api.auth.scopes import caller_access, forbidden, operation_access, required_access, verb
from api.graphql.schema import schema

# Every mutation of the schema, decided: a new one fails this test until it is added here.
MUTATIONS = {
    "createAuthor": Access.WRITE,
    "updateAuthor": Access.WRITE,
    "deleteAuthor": Access.ADMIN,
    "createBook": Access.WRITE,
    "updateBook": Access.WRITE,
    "deleteBook": Access.ADMIN,
    "createPublisher": Access.WRITE,
    "updatePublisher": Access.WRITE,
    "deletePublisher": Access.ADMIN,
    "seedCatalog": Access.ADMIN,
}


def test_every_mutation_of_the_schema_needs_the_scope_its_verb_names() -> None:
    mutation_type = schema._schema.mutation_type
    assert mutation_type is not None
    assert set(mutation_type.fields) == set(MUTATIONS)
    for field, needed in MUTATIONS.items():
        assert required_access("mutation", field) is needed, field
        assert required_access("mutation", field, reads_require_auth=True) is needed, field


@pytest.mark.parametrize("field", ["publishBook", "purge", "Create", "resetEverything"])
def test_a_mutation_of_an_unknown_verb_needs_admin(field: str) -> None:
    assert required_access("mutation", field) is Access.ADMIN


def test_verbs_are_the_leading_lower_case_word() -> None:
    assert [verb(n) for n in ("createBook", "seedCatalog", "purge", "Create")] == [
        "create",
        "seed",
        "purge",
        "",
    ]


@pytest.mark.parametrize("operation_type", ["query", "subscription"])
def test_reads_are_open_unless_reads_require_auth(operation_type: str) -> None:
    query_type = schema._schema.query_type
    assert query_type is not None
    for field in [*query_type.fields, "__typename", "__schema"]:
        assert required_access(operation_type, field) is Access.ANYONE
        assert (
            required_access(operation_type, field, reads_require_auth=True) is Access.AUTHENTICATED
        )


def test_an_operation_needs_the_most_any_root_field_needs() -> None:
    assert operation_access("mutation", ["__typename"]) is Access.ANYONE
    assert operation_access("mutation", ["createBook", "__typename"]) is Access.WRITE
    assert operation_access("mutation", ["createBook", "deleteBook"]) is Access.ADMIN
    assert operation_access("query", []) is Access.ANYONE
    assert operation_access("query", [], reads_require_auth=True) is Access.AUTHENTICATED


USER_NO_SCOPES = Caller(CallerKind.USER, "u", frozenset({"openid", "catalog:read"}))
WRITER = Caller(CallerKind.USER, "u", frozenset({Scope.WRITE}))
ADMIN = Caller(CallerKind.USER, "u", frozenset({Scope.ADMIN}))
SERVICE = Caller(CallerKind.SERVICE, "service", frozenset(Scope))

U, F = Refusal.UNAUTHENTICATED, Refusal.FORBIDDEN
VERDICTS = {  # caller: refusal for ANYONE, AUTHENTICATED, WRITE, ADMIN
    "anonymous": (ANONYMOUS, [None, U, U, U]),
    "a user without our scopes": (USER_NO_SCOPES, [None, None, F, F]),
    "a writer": (WRITER, [None, None, None, F]),
    "an admin (admin includes write)": (ADMIN, [None, None, None, None]),
    "the service": (SERVICE, [None, None, None, None]),
}


@pytest.mark.parametrize(("caller", "expected"), VERDICTS.values(), ids=list(VERDICTS))
def test_who_may_do_what(caller: Caller, expected: list[Refusal | None]) -> None:
    verdicts = [refusal(caller, needed) for needed in Access]
    assert verdicts == expected
    assert [forbidden(caller, needed) for needed in Access] == [v is not None for v in expected]


def test_scopes_are_compared_exactly() -> None:
    near_misses = frozenset({"catalog:Write", "catalog:write ", "catalog", "catalog:*"})
    assert caller_access(Caller(CallerKind.USER, "u", near_misses)) is Access.AUTHENTICATED
