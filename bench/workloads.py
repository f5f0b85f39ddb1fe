"""The workloads: GraphQL documents, request bodies, and what each is measured against."""

import base64
import itertools
import json
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from api.catalog.entities import BOOK

BOOKS_SELECTION = "books(first: 10) { edges { node { id title } } }"
BOOKS_WITH_AUTHOR = "books(first: 10) { edges { node { id title author { name } } } }"


def global_id(type_name: str, database_id: int) -> str:
    """A Relay global id as the API writes it: base64 of "<Type>:<id>"."""
    return base64.b64encode(f"{type_name}:{database_id}".encode()).decode("ascii")


def authors_document(operation: str, first: int, books: str = BOOKS_SELECTION) -> str:
    return (
        f"query {operation} {{ authors(first: {first}) "
        f"{{ edges {{ node {{ id name country {books} }} }} }} }}"
    )


AUTHOR_DOCUMENT = (
    f"query W2($id: ID!) {{ author(id: $id) {{ id name country {BOOKS_SELECTION} }} }}"
)
# W6: one author by id, a page of their books of any size, from any cursor.
VARIED_DOCUMENT = (
    "query W6($id: ID!, $first: Int!, $after: String) { author(id: $id) { id name country "
    "books(first: $first, after: $after) { edges { node { id title } } } } }"
)
VARIED_SETS = 12_000
VARIED_PAGE_SIZES = range(1, 11)
SEED_DOCUMENT = (
    "mutation W7($input: SeedCatalogInput!) { seedCatalog(input: $input) "
    "{ authors { id } userErrors { field message code } } }"
)
CREATE_BOOK_DOCUMENT = (
    "mutation W5($input: CreateBookInput!) { createBook(input: $input) "
    "{ book { id title } userErrors { field message code } } }"
)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    document: str
    variables: dict[str, Any] = field(default_factory=dict)
    # Which of the reference server's workloads this one is compared with (None: no ratio).
    reference: str | None = None
    # "ratio": requests/s over the reference's must reach `target`; "rate": requests/s must.
    target_kind: Literal["ratio", "rate"] = "ratio"
    target: float = 0.0
    # The reference runs this workload itself (False: it borrows another workload's run).
    reference_runs_it: bool = False
    # After the wrk run, measure the memory of single requests on the idle server (W3's target).
    single_request_memory: bool = False
    # Variables that change with every request (wrk cycles through them); empty: `variables`.
    variable_sets: tuple[dict[str, Any], ...] = ()
    # Measured in rows/s against COPY of the same rows (bench/seeding.py), not under wrk.
    seeding: bool = False

    @property
    def operation(self) -> str:
        return self.name

    def body(self) -> bytes:
        """The first request's body (the only one, unless the variables vary)."""
        return self.bodies()[0]

    def bodies(self) -> list[bytes]:
        return [self._body(variables) for variables in self.variable_sets or (self.variables,)]

    def _body(self, variables: dict[str, Any]) -> bytes:
        payload: dict[str, Any] = {"operationName": self.operation, "query": self.document}
        if variables:
            payload["variables"] = variables
        return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Catalogue:
    authors: int
    books_per_author: int

    @property
    def fixed_author(self) -> int:
        """The author W2 reads."""
        return 1

    @property
    def writing_author(self) -> int:
        """The author W5 adds books to: the last one, away from W2's."""
        return max(self.authors, 1)


def book_cursor(book_id: int) -> str:
    """The cursor the API gives a book in the default order (ID_ASC)."""
    return BOOK.orderings["ID_ASC"].cursor_for(book_id, book_id)


def varied_variables(catalogue: Catalogue, count: int = VARIED_SETS) -> tuple[dict[str, Any], ...]:
    """Up to `count` distinct (author, page size, cursor) sets, in a fixed shuffled order.

    The cursor is none, or one of the author's own books (bench/catalogue.py numbers book n of
    author a as (a - 1) * books_per_author + n), so every page holds what it should.
    """
    books = catalogue.books_per_author
    combinations = list(
        itertools.product(range(1, catalogue.authors + 1), VARIED_PAGE_SIZES, range(books))
    )
    random.Random(6).shuffle(combinations)  # noqa: S311 - a benchmark's order, not a secret
    return tuple(
        {
            "id": global_id("Author", author),
            "first": first,
            "after": book_cursor((author - 1) * books + skipped) if skipped else None,
        }
        for author, first, skipped in combinations[:count]
    )


def workloads(catalogue: Catalogue) -> list[Workload]:
    return [
        Workload(
            "W1",
            "authors(first: 100), each with books(first: 10)",
            authors_document("W1", 100),
            reference="W1",
            target=0.50,
            reference_runs_it=True,
        ),
        Workload(
            "W2",
            "author(id:) of one fixed author with books(first: 10)",
            AUTHOR_DOCUMENT,
            {"id": global_id("Author", catalogue.fixed_author)},
            reference="W2",
            target=0.90,
            reference_runs_it=True,
        ),
        Workload(
            "W3",
            "authors(first: 1000), each with books(first: 10)",
            authors_document("W3", 1000),
            reference="W3",
            target=0.50,
            reference_runs_it=True,
            single_request_memory=True,
        ),
        Workload(
            "W4",
            "W1 plus each book's author { name }",
            authors_document("W4", 100, BOOKS_WITH_AUTHOR),
            reference="W1",
            target=0.40,
        ),
        Workload(
            "W5",
            "createBook(input: {authorId, title}) mutation",
            CREATE_BOOK_DOCUMENT,
            {
                "input": {
                    "authorId": global_id("Author", catalogue.writing_author),
                    "title": "Benchmark book",
                }
            },
            target_kind="rate",
            target=1000.0,
        ),
        Workload(
            "W6",
            "author(id:) with books(first:, after:), variables varied per request",
            VARIED_DOCUMENT,
            reference="W6",
            target=0.90,
            reference_runs_it=True,
            variable_sets=varied_variables(catalogue),
        ),
        Workload(
            "W7",
            "seedCatalog of 1,000 authors x 10 books per call, rows/s against COPY of those rows",
            SEED_DOCUMENT,
            reference="COPY",
            target=0.80,
            seeding=True,
        ),
    ]


ALL_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
# The statement-count constancy probe: W1's shape at first: 1 against W1 itself (first: 100).
W1_FIRST_1 = Workload("W1First1", "W1 at first: 1", authors_document("W1First1", 1))
