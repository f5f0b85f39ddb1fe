"""Mutations that create, change and delete authors."""

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay

from api.catalog import authors
from api.catalog.ids import decode_id
from api.catalog.problems import InvalidInput, Problem, ProblemCode
from api.catalog.text import clean_text
from api.db.models import BIO_MAX, COUNTRY_MAX, NAME_MAX
from api.graphql.context import Info
from api.graphql.errors import UserError
from api.graphql.permissions import CanWrite
from api.graphql.types import Author
from api.graphql.writes import user_errors, write

AUTHOR_NOT_FOUND = Problem(("id",), "no author has this id", ProblemCode.NOT_FOUND)


@strawberry.input
class CreateAuthorInput:
    name: str
    bio: str | None = None
    country: str | None = None


@strawberry.input(description="Fields left out keep their value; null clears bio or country.")
class UpdateAuthorInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    bio: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET


@strawberry.input
class DeleteAuthorInput:
    id: strawberry.ID
    with_books: bool = strawberry.field(
        default=False,
        description="Also delete the author's books; without it an author with books is kept.",
    )


@strawberry.type
class CreateAuthorPayload:
    author: Author | None
    user_errors: list[UserError]


@strawberry.type
class UpdateAuthorPayload:
    author: Author | None
    user_errors: list[UserError]


@strawberry.type
class DeleteAuthorPayload:
    author: Author | None = strawberry.field(description="The author as it was before deletion.")
    deleted_book_ids: list[strawberry.ID]
    user_errors: list[UserError]


def author_fields(
    *, name: Any, bio: Any, country: Any, problems: list[Problem], path: tuple[str, ...] = ()
) -> dict[str, str | None]:
    """Cleaned values for the fields that were given (UNSET ones are left out)."""
    fields: dict[str, str | None] = {}
    if name is not strawberry.UNSET:
        if name is None:
            problems.append(Problem((*path, "name"), "name must not be null", ProblemCode.BLANK))
        else:
            fields["name"] = clean_text(
                name, field=(*path, "name"), max_length=NAME_MAX, problems=problems
            )
    if bio is not strawberry.UNSET:
        fields["bio"] = clean_text(
            bio,
            field=(*path, "bio"),
            max_length=BIO_MAX,
            problems=problems,
            required=False,
            multiline=True,
        )
    if country is not strawberry.UNSET:
        fields["country"] = clean_text(
            country,
            field=(*path, "country"),
            max_length=COUNTRY_MAX,
            problems=problems,
            required=False,
        )
    return fields


@strawberry.type
class AuthorMutations:
    @strawberry.mutation(permission_classes=[CanWrite], description="Add an author.")
    async def create_author(self, info: Info, input: CreateAuthorInput) -> CreateAuthorPayload:
        problems: list[Problem] = []
        fields = author_fields(
            name=input.name, bio=input.bio, country=input.country, problems=problems
        )
        if problems:
            return CreateAuthorPayload(author=None, user_errors=user_errors(problems))

        async def create(session: AsyncSession) -> Author:
            row = await authors.create_author(
                session, name=fields["name"] or "", bio=fields["bio"], country=fields["country"]
            )
            return Author.from_row(row)

        author, errors = await write(info, create)
        return CreateAuthorPayload(author=author, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWrite], description="Change some of an author's fields."
    )
    async def update_author(self, info: Info, input: UpdateAuthorInput) -> UpdateAuthorPayload:
        problems: list[Problem] = []
        author_id = decode_id(input.id, type_name="Author", field=("id",))
        if isinstance(author_id, Problem):
            problems.append(author_id)
        fields = author_fields(
            name=input.name, bio=input.bio, country=input.country, problems=problems
        )
        if problems or isinstance(author_id, Problem):
            return UpdateAuthorPayload(author=None, user_errors=user_errors(problems))
        key = author_id

        async def update(session: AsyncSession) -> Author:
            row = await authors.update_author(session, author_id=key, changes=fields)
            if row is None:
                raise InvalidInput([AUTHOR_NOT_FOUND])
            return Author.from_row(row)

        author, errors = await write(info, update)
        return UpdateAuthorPayload(author=author, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Delete an author; one with books only `withBooks: true`.",
    )
    async def delete_author(self, info: Info, input: DeleteAuthorInput) -> DeleteAuthorPayload:
        author_id = decode_id(input.id, type_name="Author", field=("id",))
        if isinstance(author_id, Problem):
            return DeleteAuthorPayload(
                author=None, deleted_book_ids=[], user_errors=user_errors([author_id])
            )
        key = author_id

        async def delete(session: AsyncSession) -> tuple[Author, list[strawberry.ID]]:
            deleted = await authors.delete_author(
                session, author_id=key, with_books=input.with_books
            )
            if deleted is None:
                raise InvalidInput([AUTHOR_NOT_FOUND])
            row, book_ids = deleted
            book_global_ids = [strawberry.ID(str(relay.to_base64("Book", i))) for i in book_ids]
            return Author.from_row(row), book_global_ids

        result, errors = await write(info, delete)
        author, book_ids = result if result else (None, [])
        return DeleteAuthorPayload(author=author, deleted_book_ids=book_ids, user_errors=errors)
