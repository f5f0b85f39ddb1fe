"""GraphQL documents as a trace shows them: on one line, without the literals a client wrote.

OpenTelemetry's semantic conventions put the document on the operation span
(`graphql.document`) and ask that values be left out: a name searched for or an email typed
into a query is the client's data, like its variables, and a trace store is no place for it.
"""

from typing import Any

from graphql import (
    DocumentNode,
    FloatValueNode,
    IntValueNode,
    OperationDefinitionNode,
    StringValueNode,
    Visitor,
    parse,
    print_ast,
    visit,
)

from api.pipeline.caches import ByteBoundedCache

MAX_DOCUMENT_CHARS = 2048  # a document attribute longer than this is cut (a span is no archive)
LITERAL_PLACEHOLDER = "?"
SHOWN_DOCUMENTS_CACHE_BYTES = 2 * 1024 * 1024


class _HideLiterals(Visitor):
    """Every string, integer and float literal becomes `?`: values a client wrote into the
    document (a name searched for, an email) stay out of the trace, like variables do."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> IntValueNode:
        return IntValueNode(value=LITERAL_PLACEHOLDER)

    def enter_int_value(self, node: IntValueNode, *_: Any) -> IntValueNode:
        return IntValueNode(value=LITERAL_PLACEHOLDER)

    def enter_float_value(self, node: FloatValueNode, *_: Any) -> IntValueNode:
        return IntValueNode(value=LITERAL_PLACEHOLDER)


def document_without_literals(document: DocumentNode) -> str:
    """The document on one line with its literals hidden, cut to MAX_DOCUMENT_CHARS."""
    text = " ".join(print_ast(visit(document, _HideLiterals())).split())
    return text if len(text) <= MAX_DOCUMENT_CHARS else text[: MAX_DOCUMENT_CHARS - 1] + "…"


# Documents already shown, by their text: a repeated document is printed once, not per request.
_shown: ByteBoundedCache[str, str] = ByteBoundedCache(SHOWN_DOCUMENTS_CACHE_BYTES)


def shown_document(operation: OperationDefinitionNode) -> str:
    """The whole document the operation came from (its fragments too), without literals.

    The operation's location leads back to its document's text, so the hook needs nothing but
    the operation; the text is parsed again only the first time it is seen.
    """
    if operation.loc is None:  # built without locations: the operation alone is what we have
        return document_without_literals(DocumentNode(definitions=(operation,)))
    text = operation.loc.source.body
    shown = _shown.get(text)
    if shown is None:
        shown = document_without_literals(parse(text, no_location=True))
        _shown.put(text, shown, len(text) + len(shown))
    return shown
