"""Transitional: the query planner, until it is rebuilt on `api.catalog.entities`, imports this.

Everything else reads and writes books through `api.catalog.records`; delete this module
with the planner's last import of it.
"""

from api.catalog.entities import BOOK

BOOK_ORDERINGS = BOOK.orderings
