"""Mutations that create, change and delete books."""

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog import books
from api.catalog.ids import decode_id
from api.catalog.problems import InvalidInput, Problem, ProblemCode
from api.catalog.text import clean_text
from api.db.models import TITLE_MAX
from api.graphql.context import Info
from api.graphql.errors import UserError
from api.graphql.permissions import CanWrite
from api.graphql.types import Book
from api.graphql.writes import user_errors, write

BOOK_NOT_FOUND = Problem(("id",), "no book has this id", ProblemCode.NOT_FOUND)


@strawberry.input
class CreateBookInput:
    author_id: strawberry.ID
    title: str


@strawberry.input
class UpdateBookInput:
    id: strawberry.ID
    title: str


@strawberry.input
class DeleteBookInput:
    id: strawberry.ID


@strawberry.type
class CreateBookPayload:
    book: Book | None
    user_errors: list[UserError]


@strawberry.type
class UpdateBookPayload:
    book: Book | None
    user_errors: list[UserError]


@strawberry.type
class DeleteBookPayload:
    book: Book | None = strawberry.field(description="The book as it was before deletion.")
    user_errors: list[UserError]


def _key(value: str, type_name: str, field: str, problems: list[Problem]) -> int:
    decoded = decode_id(value, type_name=type_name, field=(field,))
    if isinstance(decoded, Problem):
        problems.append(decoded)
        return 0
    return decoded


@strawberry.type
class BookMutations:
    @strawberry.mutation(permission_classes=[CanWrite], description="Add a book to an author.")
    async def create_book(self, info: Info, input: CreateBookInput) -> CreateBookPayload:
        problems: list[Problem] = []
        author_id = _key(input.author_id, "Author", "authorId", problems)
        title = clean_text(input.title, field=("title",), max_length=TITLE_MAX, problems=problems)
        if problems or title is None:
            return CreateBookPayload(book=None, user_errors=user_errors(problems))

        async def create(session: AsyncSession) -> Book:
            (row,) = await books.create_books(
                session, values=[{"author_id": author_id, "title": title}]
            )
            return Book.from_row(row)

        book, errors = await write(info, create)
        return CreateBookPayload(book=book, user_errors=errors)

    @strawberry.mutation(permission_classes=[CanWrite], description="Rename a book.")
    async def update_book(self, info: Info, input: UpdateBookInput) -> UpdateBookPayload:
        problems: list[Problem] = []
        book_id = _key(input.id, "Book", "id", problems)
        title = clean_text(input.title, field=("title",), max_length=TITLE_MAX, problems=problems)
        if problems or title is None:
            return UpdateBookPayload(book=None, user_errors=user_errors(problems))

        async def update(session: AsyncSession) -> Book:
            row = await books.update_book(session, book_id=book_id, title=title)
            if row is None:
                raise InvalidInput([BOOK_NOT_FOUND])
            return Book.from_row(row)

        book, errors = await write(info, update)
        return UpdateBookPayload(book=book, user_errors=errors)

    @strawberry.mutation(permission_classes=[CanWrite], description="Delete a book.")
    async def delete_book(self, info: Info, input: DeleteBookInput) -> DeleteBookPayload:
        problems: list[Problem] = []
        book_id = _key(input.id, "Book", "id", problems)
        if problems:
            return DeleteBookPayload(book=None, user_errors=user_errors(problems))

        async def delete(session: AsyncSession) -> Book:
            row = await books.delete_book(session, book_id=book_id)
            if row is None:
                raise InvalidInput([BOOK_NOT_FOUND])
            return Book.from_row(row)

        book, errors = await write(info, delete)
        return DeleteBookPayload(book=book, user_errors=errors)
