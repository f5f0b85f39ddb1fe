"""Pagination arguments from GraphQL to a validated window, with the service's page limits."""

from api.catalog.describe import InvalidPageRequest, Ordering
from api.catalog.pagination import Window, page_window
from api.graphql.context import Info
from api.graphql.errors import ClientError


def window_for(
    info: Info,
    ordering: Ordering,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Window:
    settings = info.context.settings
    try:
        return page_window(
            ordering,
            first=first,
            after=after,
            last=last,
            before=before,
            default_size=settings.default_page_size,
            max_size=settings.max_page_size,
        )
    except InvalidPageRequest as error:
        raise ClientError(str(error)) from None
