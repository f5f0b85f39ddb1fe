"""The schema clients see; `schema.graphql` at the project root is its printed form."""

import re
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError, GraphQLSchema
from graphql.validation import NoSchemaIntrospectionCustomRule, specified_rules
from strawberry.extensions import AddValidationRules, DisableIntrospection, MaxTokensLimiter
from strawberry.schema.config import BatchingConfig, StrawberryConfig
from strawberry.types import ExecutionContext

from api.graphql.context import CloseSession, PreparedDocument
from api.graphql.derive import with_fields
from api.graphql.errors import ErrorPolicy
from api.graphql.limits import document_limits
from api.graphql.mutations import ENTITY_MUTATIONS
from api.graphql.queries import Query
from api.graphql.seed_mutation import SEED_MUTATIONS
from api.graphql.subscriptions import Subscription
from api.settings import setting


@strawberry.type
@with_fields({**ENTITY_MUTATIONS, **SEED_MUTATIONS})
class Mutation:
    pass


@dataclass(frozen=True)
class SchemaOptions:
    """What changes between development and production, and the limits on a document."""

    production: bool = setting("production")
    max_depth: int = setting("max_query_depth")
    max_aliases: int = setting("max_aliases")
    max_tokens: int = setting("max_tokens")
    max_cost: int = setting("max_query_cost")
    default_page_size: int = setting("default_page_size")
    max_page_size: int = setting("max_page_size")
    batch_max_operations: int = setting("batch_max_operations")


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

    @property
    def graphql_schema(self) -> GraphQLSchema:
        """graphql-core's schema underneath, for the query planner, which reads it directly."""
        return self._schema

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        if self.hide_suggestions:
            for error in errors:
                error.message = SUGGESTION.sub("", error.message)


def build_schema(options: SchemaOptions | None = None) -> CatalogSchema:
    options = options or SchemaOptions()
    # Built once: ValidationCache keys on the rule classes.
    limits: list[type[ASTValidationRule]] = [
        document_limits(options.max_depth, options.max_aliases)
    ]
    # The front door parses, validates, authorises and costs every request once
    # (api.pipeline); PreparedDocument hands its document to the resolvers. The parsing and
    # validation extensions only serve the schema executed directly, as tests do.
    extensions: list[object] = [
        PreparedDocument,
        CloseSession,
        ErrorPolicy,
        lambda: MaxTokensLimiter(max_token_count=options.max_tokens),
        lambda: AddValidationRules(limits),
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
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=options.production,
            batching_config=batching,
        ),
    )


def validation_rules(options: SchemaOptions) -> list[type[ASTValidationRule]]:
    """What the front door validates every document with: the spec's rules and our limits."""
    rules = [*specified_rules, document_limits(options.max_depth, options.max_aliases)]
    if options.production:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


schema = build_schema()
