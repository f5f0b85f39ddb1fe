"""The catalogue's entities, each described once: add a column here, in the model and in a
migration, and the GraphQL types, inputs, filters, orderings, the catalogue's reads and writes
and the query planner all follow.
"""

from api.catalog.checks import check_entities
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
from api.db.models import Author, Book, Publisher

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
BOOK_PUBLISHER = Field(
    "publisherId",
    Book.publisher_id,
    Kind.REFERENCE,
    "The publisher's global id; null when the book has none.",
    readable=False,
    references="Publisher",
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
    fields=(BOOK_AUTHOR, BOOK_TITLE, BOOK_PUBLISHED_YEAR, BOOK_CREATED_AT, BOOK_PUBLISHER),
    filters=(
        Filter("authorId", BOOK_AUTHOR, Op.EQUALS),
        contains(BOOK_TITLE),
        Filter("publishedYearFrom", BOOK_PUBLISHED_YEAR, Op.AT_LEAST),
        Filter("publishedYearTo", BOOK_PUBLISHED_YEAR, Op.AT_MOST),
        Filter("publisherId", BOOK_PUBLISHER, Op.EQUALS),
    ),
    order_keys=(
        OrderKey("TITLE", BOOK_TITLE),
        OrderKey("CREATED_AT", BOOK_CREATED_AT),
        OrderKey("PUBLISHED_YEAR", BOOK_PUBLISHED_YEAR, nulls_as=INT4_MAX),
    ),
    relations=(
        Relation("author", "Author", Cardinality.ONE, Book.author_id, Author.id, "The author."),
        Relation(
            "publisher",
            "Publisher",
            Cardinality.ONE,
            Book.publisher_id,
            Publisher.id,
            "The publisher; null when the book has none.",
            optional=True,
        ),
    ),
)

PUBLISHER_NAME = Field(
    "name",
    Publisher.name,
    Kind.TEXT,
    "Unique, ignoring case.",
    required=True,
    unique_ignoring_case=True,
)

PUBLISHER = Entity(
    name="Publisher",
    plural="publishers",
    model=Publisher,
    description="A publisher of books; the books still belong to their authors.",
    fields=(PUBLISHER_NAME, Field("country", Publisher.country, Kind.TEXT, "")),
    filters=(Filter("name", PUBLISHER_NAME, Op.EQUALS_IGNORING_CASE),),
    order_keys=(OrderKey("NAME", PUBLISHER_NAME),),
    relations=(
        Relation(
            "books",
            "Book",
            Cardinality.MANY,
            Publisher.id,
            Book.publisher_id,
            "The books it published, oldest first unless ordered otherwise.",
        ),
    ),
)

ENTITIES = {entity.name: entity for entity in (AUTHOR, BOOK, PUBLISHER)}
check_entities(ENTITIES)
