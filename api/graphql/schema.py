"""The schema clients see; `schema.graphql` at the project root is its printed form."""

import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from api.graphql.author_mutations import AuthorMutations
from api.graphql.book_mutations import BookMutations
from api.graphql.context import CloseSession
from api.graphql.errors import ErrorPolicy
from api.graphql.queries import Query
from api.graphql.seed_mutation import SeedMutations
from api.observability.requests import RecordOperation


@strawberry.type
class Mutation(AuthorMutations, BookMutations, SeedMutations):
    pass


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        CloseSession,
        RecordOperation,
        ErrorPolicy,
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ],
)
