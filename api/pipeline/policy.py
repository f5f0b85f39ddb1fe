"""Who may run an operation, and how much it may ask for: checked once, before any coercion.

The cheapest refusals come first. Authorisation needs only the operation's type (and, for
scopes, its root fields); list caps read the raw JSON variables with `len()`; the cost reads
page sizes. Nothing here coerces a variable or builds an input object, so a refused request
costs no more than its JSON decoding, however large its variables.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    ObjectValueNode,
    OperationDefinitionNode,
    VariableNode,
)

from api.auth import Authenticator, Forbidden, Unauthenticated, www_authenticate
from api.graphql.limits import over_cost_error, query_cost
from api.pipeline.refusals import Refused, RequestCode


@dataclass(frozen=True)
class ListCap:
    """At most `limit` items, in all, in the lists at `path` of a root field's argument.

    `path` names input keys from the argument down; "*" stands for every item of a list, so
    ("authors", "*", "books") counts every author's books together.
    """

    field: str
    argument: str
    path: tuple[str, ...]
    limit: int
    message: str

    def count(self, value: Any) -> int:
        values = [value]
        for step in self.path:
            if step == "*":
                values = [item for v in values if isinstance(v, list) for item in v]
            else:
                values = [v.get(step) for v in values if isinstance(v, dict)]
        return sum(len(v) for v in values if isinstance(v, list))


def root_fields(operation: OperationDefinitionNode) -> Iterable[FieldNode]:
    return (s for s in operation.selection_set.selections if isinstance(s, FieldNode))


@dataclass(frozen=True)
class Policy:
    authenticator: Authenticator
    list_caps: Sequence[ListCap]
    max_cost: int
    default_page_size: int
    max_page_size: int

    async def authorise(self, operation: OperationDefinitionNode, authorization: str | None) -> str:
        """The caller's identity ("anonymous", "service" or the token's subject); refused when
        the caller may not run this operation. The one place scopes are checked, whichever
        executor runs it next."""
        fields = [node.name.value for node in root_fields(operation)]
        try:
            caller = await self.authenticator.authorize(
                authorization, operation.operation.value, fields
            )
        except Unauthenticated as error:
            message = str(error)
            if "Bearer" not in message:
                message = f"{message}: send Authorization: Bearer <token>"
            raise Refused(
                RequestCode.UNAUTHENTICATED,
                message[:1].upper() + message[1:],
                headers={"WWW-Authenticate": www_authenticate(error)},
            ) from None
        except Forbidden as error:
            raise Refused(
                RequestCode.FORBIDDEN,
                str(error),
                headers={"WWW-Authenticate": www_authenticate(error)},
            ) from None
        return f"{caller.kind.value}:{caller.subject or ''}"

    def check_lists(self, operation: OperationDefinitionNode, variables: dict[str, Any]) -> None:
        """Refuse lists over their caps, counted in the raw variables before any coercion.

        An argument written inline in the document is bounded by the document's size limit,
        and the resolver checks it against the same caps.
        """
        if not self.list_caps:
            return
        for node in root_fields(operation):
            for cap in self.list_caps:
                if node.name.value != cap.field:
                    continue
                for argument in node.arguments or ():
                    if argument.name.value != cap.argument:
                        continue
                    value = argument.value
                    if isinstance(value, VariableNode):
                        raw = variables.get(value.name.value)
                    elif isinstance(value, ObjectValueNode):
                        continue
                    else:
                        continue
                    if cap.count(raw) > cap.limit:
                        raise Refused(
                            RequestCode.TOO_MANY,
                            cap.message,
                            errors=[
                                {
                                    "message": cap.message,
                                    "path": [node.alias.value if node.alias else cap.field],
                                    "extensions": {
                                        "code": RequestCode.TOO_MANY.value,
                                        "field": [cap.argument, *cap.path],
                                    },
                                }
                            ],
                        )

    def cost(
        self,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> int:
        return query_cost(
            operation,
            fragments,
            variables,
            default_page_size=self.default_page_size,
            max_page_size=self.max_page_size,
        )

    def check_cost(self, total: int) -> None:
        if total > self.max_cost:
            error = over_cost_error(total, self.max_cost)
            raise Refused(
                RequestCode.QUERY_TOO_COSTLY,
                error.message,
                errors=[{"message": error.message, "extensions": dict(error.extensions or {})}],
            )
