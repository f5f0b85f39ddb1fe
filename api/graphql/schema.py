"""The schema clients see; `schema.graphql` at the project root is its printed form."""

from dataclasses import dataclass

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import BatchingConfig, StrawberryConfig

from api.graphql.author_mutations import AuthorMutations
from api.graphql.book_mutations import BookMutations
from api.graphql.context import CloseSession
from api.graphql.errors import ErrorPolicy
from api.graphql.planner.fastpath import LearnPlans
from api.graphql.queries import Query
from api.graphql.seed_mutation import SeedMutations
from api.observability.requests import RecordOperation


@strawberry.type
class Mutation(AuthorMutations, BookMutations, SeedMutations):
    pass


@dataclass(frozen=True)
class SchemaOptions:
    """What changes between development and production, and the limits on a document."""

    production: bool = False
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    batch_max_operations: int = 0


def build_schema(options: SchemaOptions | None = None) -> strawberry.Schema:
    options = options or SchemaOptions()
    # Built once: ValidationCache keys on the rule classes; each limiter makes new ones.
    limits = [
        *QueryDepthLimiter(max_depth=options.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=options.max_aliases).validation_rules,
    ]
    extensions: list[object] = [
        CloseSession,
        RecordOperation,
        ErrorPolicy,
        LearnPlans,
        lambda: MaxTokensLimiter(max_token_count=options.max_tokens),
        lambda: AddValidationRules(limits),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if options.production:
        extensions.append(DisableIntrospection)
    batching = (
        BatchingConfig(max_operations=options.batch_max_operations)
        if options.batch_max_operations
        else None
    )
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,  # type: ignore[arg-type]
        config=StrawberryConfig(
            disable_field_suggestions=options.production,
            batching_config=batching,
        ),
    )


schema = build_schema()
