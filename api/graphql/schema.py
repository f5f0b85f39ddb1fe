"""The schema clients see; `schema.graphql` at the project root is its printed form."""

import re
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.schema.config import BatchingConfig, StrawberryConfig
from strawberry.types import ExecutionContext

from api.graphql.author_mutations import AuthorMutations
from api.graphql.book_mutations import BookMutations
from api.graphql.context import CloseSession
from api.graphql.errors import ErrorPolicy
from api.graphql.limits import cost_limit, document_limits
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
    max_cost: int = 20_000
    default_page_size: int = 20
    max_page_size: int = 100
    batch_max_operations: int = 0


SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


class CatalogSchema(strawberry.Schema):
    """Strawberry's schema, quieter and more discreet about its errors.

    Unexpected errors are logged by ErrorPolicy, with the request id; errors the client made
    (validation, bad input) are not worth a traceback in the server's log. In production no
    message may suggest names ("Did you mean …?"): that would map the schema without
    introspection, and strawberry's own switch only covers unknown fields.
    """

    def __init__(self, *args: Any, hide_suggestions: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hide_suggestions = hide_suggestions

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        if self.hide_suggestions:
            for error in errors:
                error.message = SUGGESTION.sub("", error.message)


def build_schema(options: SchemaOptions | None = None) -> strawberry.Schema:
    options = options or SchemaOptions()
    # Built once: ValidationCache keys on the rule classes.
    limits: list[type[ASTValidationRule]] = [
        document_limits(options.max_depth, options.max_aliases)
    ]
    extensions: list[object] = [
        CloseSession,
        RecordOperation,
        ErrorPolicy,
        lambda: MaxTokensLimiter(max_token_count=options.max_tokens),
        lambda: AddValidationRules(limits),
        cost_limit(options.max_cost, options.default_page_size, options.max_page_size),
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
    return CatalogSchema(
        hide_suggestions=options.production,
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=options.production,
            batching_config=batching,
        ),
    )


schema = build_schema()
