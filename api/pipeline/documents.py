"""Documents parsed once and validated once per process, kept in a cache bounded by bytes.

Both executors read the same `ParsedDocument`: the planner keeps what it learns about a
document on it, and the resolvers are handed its AST, so nothing is parsed or validated twice.
The checks run cheapest first: the document's size before any lexing, then the parse budget
for documents not seen before, then the parser's token limit (comments count), then
validation. A document that fails is not kept: only valid documents hold memory.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.language.parser import Parser

from api.pipeline.budget import TokenBucket
from api.pipeline.caches import ByteBoundedCache
from api.pipeline.refusals import Refused, RequestCode

# What a parsed document holds, per source character (a str may take 4 bytes a character,
# and token values copy the text) and per token (its Token, node, name and location).
BYTES_PER_CHARACTER = 4
BYTES_PER_TOKEN = 700
BYTES_PER_DOCUMENT = 2048

Validate = Callable[[GraphQLSchema, DocumentNode, tuple[type[ASTValidationRule], ...]], Any]


@dataclass(eq=False)
class ParsedDocument:
    """A valid document, its operations by name and its fragments."""

    text: str
    node: DocumentNode
    operations: list[OperationDefinitionNode]
    fragments: dict[str, FragmentDefinitionNode]
    size: int
    planned: Any = None  # what the planner learnt about it (see planner.fastpath)
    planner_tried: bool = False
    extra: dict[Any, Any] = field(default_factory=dict)

    def operation(self, name: str | None) -> OperationDefinitionNode:
        """The operation a request names, as GraphQL's GetOperation picks it."""
        if name is None:
            if len(self.operations) == 1:
                return self.operations[0]
            raise Refused(
                RequestCode.OPERATION_NAME_REQUIRED,
                "Must provide operation name if query contains multiple operations.",
            )
        for operation in self.operations:
            if operation.name is not None and operation.name.value == name:
                return operation
        raise Refused(RequestCode.OPERATION_NOT_FOUND, f"Unknown operation named '{name[:200]}'.")


def formatted(error: GraphQLError, code: RequestCode) -> dict[str, Any]:
    shown: dict[str, Any] = dict(error.formatted)
    shown["extensions"] = {**(error.extensions or {}), "code": code.value}
    return shown


def estimated_size(text: str, tokens: int) -> int:
    return BYTES_PER_DOCUMENT + len(text) * BYTES_PER_CHARACTER + tokens * BYTES_PER_TOKEN


def utf8_length_over(text: str, limit: int) -> bool:
    """Whether `text` is over `limit` UTF-8 bytes, encoding it only when it might be."""
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit


class Documents:
    def __init__(
        self,
        schema: GraphQLSchema,
        rules: Sequence[type[ASTValidationRule]],
        *,
        validate: Validate,
        tidy_errors: Callable[[list[GraphQLError]], None],
        max_bytes: int,
        max_tokens: int,
        cache_bytes: int,
        parse_budget: TokenBucket,
    ) -> None:
        self.schema = schema
        self.rules = tuple(rules)
        self._validate = validate
        self._tidy_errors = tidy_errors
        self.max_bytes = max_bytes
        self.max_tokens = max_tokens
        self.cache: ByteBoundedCache[str, ParsedDocument] = ByteBoundedCache(cache_bytes)
        self.parse_budget = parse_budget
        self.parsed = 0  # documents parsed since start: a counter of work, for tests

    def get(self, text: str, *, trusted: bool = False) -> ParsedDocument:
        """The parsed, valid document for `text`; Refused with the reason otherwise.

        `trusted` documents (persisted ones, stored by an operator) may be larger.
        """
        known = self.cache.get(text)
        if known is not None:
            return known
        if not trusted and utf8_length_over(text, self.max_bytes):
            raise Refused(
                RequestCode.DOCUMENT_TOO_LARGE,
                f"The document is larger than {self.max_bytes} bytes; send a smaller one "
                "(or a persisted document id)",
            )
        if not self.parse_budget.take(len(text)):
            wait = max(1, round(self.parse_budget.seconds_until(len(text))))
            raise Refused(
                RequestCode.SERVER_BUSY,
                "The server is parsing too many new documents; retry shortly",
                headers={"Retry-After": str(wait)},
            )
        parsed = self._parse(text)
        self.cache.put(text, parsed, parsed.size)
        return parsed

    def charge(self, parsed: ParsedDocument, extra: int) -> None:
        """Account for memory the planner added to a cached document."""
        parsed.size += extra
        self.cache.grow(parsed.text, extra)

    def _parse(self, text: str) -> ParsedDocument:
        self.parsed += 1
        parser = Parser(text, max_tokens=self.max_tokens)
        try:
            node = parser.parse_document()
        except GraphQLError as error:
            raise Refused(
                RequestCode.GRAPHQL_PARSE_FAILED,
                error.message,
                errors=[formatted(error, RequestCode.GRAPHQL_PARSE_FAILED)],
            ) from None
        except RecursionError:
            raise Refused(
                RequestCode.GRAPHQL_PARSE_FAILED, "The document is nested too deeply"
            ) from None
        errors = list(self._validate(self.schema, node, self.rules))
        if errors:
            self._tidy_errors(errors)
            raise Refused(
                RequestCode.GRAPHQL_VALIDATION_FAILED,
                errors[0].message,
                errors=[formatted(e, RequestCode.GRAPHQL_VALIDATION_FAILED) for e in errors],
            )
        operations = [d for d in node.definitions if isinstance(d, OperationDefinitionNode)]
        fragments = {
            d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)
        }
        size = estimated_size(text, parser.token_count)
        return ParsedDocument(text, node, operations, fragments, size)
