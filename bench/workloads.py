"""The five workloads: GraphQL documents, request bodies, and what each is measured against."""

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Literal

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

    @property
    def operation(self) -> str:
        return self.name

    def body(self) -> bytes:
        payload: dict[str, Any] = {"operationName": self.operation, "query": self.document}
        if self.variables:
            payload["variables"] = self.variables
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
    ]


# The statement-count constancy probe: W1's shape at first: 1 against W1 itself (first: 100).
W1_FIRST_1 = Workload("W1First1", "W1 at first: 1", authors_document("W1First1", 1))
