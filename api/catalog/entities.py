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
    contains,
    created_at,
)
from api.catalog.keys import INT4_MAX
from api.db.models import Author, Book

AUTHOR_CREATED_AT = created_at(Author.created_at, "author")
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
    filters=(Filter("country", AUTHOR_COUNTRY, Op.EQUALS_IGNORING_CASE), contains(AUTHOR_NAME)),
    order_keys=(OrderKey("NAME", AUTHOR_NAME), OrderKey("CREATED_AT", AUTHOR_CREATED_AT)),
    relations=(
        Relation(
            "books",
            "Book",
            Cardinality.MANY,
            Author.id,
            Book.author_id,
            "The author's books, oldest first unless ordered otherwise.",
            owns=True,
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
BOOK_CREATED_AT = created_at(Book.created_at, "book")
BOOK_PUBLISHED_YEAR = Field(
    "publishedYear",
    Book.published_year,
    Kind.INT,
    "The year the book was first published.",
    minimum=1000,
    maximum=2100,
)

BOOK = Entity(
    name="Book",
    plural="books",
    model=Book,
    description="A book, written by one author.",
    fields=(BOOK_AUTHOR, BOOK_TITLE, BOOK_PUBLISHED_YEAR, BOOK_CREATED_AT),
    filters=(
        Filter("authorId", BOOK_AUTHOR, Op.EQUALS),
        contains(BOOK_TITLE),
        Filter("publishedYearFrom", BOOK_PUBLISHED_YEAR, Op.AT_LEAST),
        Filter("publishedYearTo", BOOK_PUBLISHED_YEAR, Op.AT_MOST),
    ),
    order_keys=(
        OrderKey("TITLE", BOOK_TITLE),
        OrderKey("CREATED_AT", BOOK_CREATED_AT),
        OrderKey("PUBLISHED_YEAR", BOOK_PUBLISHED_YEAR, nulls_as=INT4_MAX),
    ),
    relations=(
        Relation("author", "Author", Cardinality.ONE, Book.author_id, Author.id, "The author."),
    ),
)

ENTITIES = {entity.name: entity for entity in (AUTHOR, BOOK)}
