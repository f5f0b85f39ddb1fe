"""The catalogue's entities, each described once: add a column here, in the model and in a
migration, and the GraphQL types, inputs, filters, orderings, the catalogue's reads and writes
and the query planner all follow.
"""

from api.catalog.describe import (
    Cardinality,
    Entity,
    Field,
    Filter,
    Kind,
    Op,
    OrderKey,
    Relation,
)
from api.db.models import Author, Book

AUTHOR_CREATED_AT = Field(
    "createdAt",
    Author.created_at,
    Kind.TIMESTAMP,
    "When the author was added.",
    required=True,
    creatable=False,
    updatable=False,
)
AUTHOR_NAME = Field("name", Author.name, Kind.TEXT, "", required=True)
AUTHOR_COUNTRY = Field("country", Author.country, Kind.TEXT, "")

AUTHOR = Entity(
    name="Author",
    plural="authors",
    model=Author,
    description="A writer in the catalogue.",
    fields=(
        AUTHOR_NAME,
        Field("bio", Author.bio, Kind.TEXT, "", max_length=5000, multiline=True),
        AUTHOR_COUNTRY,
        AUTHOR_CREATED_AT,
    ),
    filters=(
        Filter("country", AUTHOR_COUNTRY, Op.EQUALS_IGNORING_CASE, "Exact, ignoring case."),
        Filter("nameContains", AUTHOR_NAME, Op.CONTAINS, "Substring of the name, ignoring case."),
    ),
    order_keys=(
        OrderKey("ID", Field("id", Author.id, Kind.INT, "", readable=False)),
        OrderKey("NAME", AUTHOR_NAME),
        OrderKey("CREATED_AT", AUTHOR_CREATED_AT),
    ),
    relations=(
        Relation(
            "books",
            "Book",
            Cardinality.MANY,
            Author.id,
            Book.author_id,
            "The author's books, oldest first unless ordered otherwise.",
        ),
    ),
)

BOOK_TITLE = Field("title", Book.title, Kind.TEXT, "", required=True)
BOOK_AUTHOR = Field(
    "authorId",
    Book.author_id,
    Kind.REFERENCE,
    "The author's global id.",
    required=True,
    readable=False,
    updatable=False,
    references="Author",
)
BOOK_CREATED_AT = Field(
    "createdAt",
    Book.created_at,
    Kind.TIMESTAMP,
    "When the book was added.",
    required=True,
    creatable=False,
    updatable=False,
)

BOOK = Entity(
    name="Book",
    plural="books",
    model=Book,
    description="A book, written by one author.",
    fields=(BOOK_AUTHOR, BOOK_TITLE, BOOK_CREATED_AT),
    filters=(
        Filter("authorId", BOOK_AUTHOR, Op.EQUALS, "The author's global id."),
        Filter("titleContains", BOOK_TITLE, Op.CONTAINS, "Substring of the title, ignoring case."),
    ),
    order_keys=(
        OrderKey("ID", Field("id", Book.id, Kind.INT, "", readable=False)),
        OrderKey("TITLE", BOOK_TITLE),
        OrderKey("CREATED_AT", BOOK_CREATED_AT),
    ),
    relations=(
        Relation("author", "Author", Cardinality.ONE, Book.author_id, Author.id, "The author."),
    ),
)

ENTITIES = {entity.name: entity for entity in (AUTHOR, BOOK)}
