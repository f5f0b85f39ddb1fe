"""Relay global ids in, database keys out, with a reason when an id is not usable.

The one decoder of ids: resolvers, the catalogue's descriptions and the query planner use it.
"""

from strawberry.relay import GlobalID, from_base64

from api.catalog.keys import INT4_MAX
from api.catalog.problems import InvalidValue, Problem, ProblemCode
from api.catalog.words import with_article, words


def decode_id(value: str, *, type_name: str, field: tuple[str, ...]) -> int:
    """The integer key inside a global id of `type_name`; `InvalidValue` saying what is wrong."""
    try:  # GlobalID.from_id's parsing, without building a GlobalID: this runs per request
        id_type, node_id = from_base64(value)
    except ValueError:
        raise _invalid(field, f"{field[-1]} is not a valid id") from None
    if id_type != type_name:
        given, wanted = with_article(words(id_type)), with_article(words(type_name))
        raise _invalid(field, f"{field[-1]} is the id of {given}, not of {wanted}")
    if not node_id.isascii() or not node_id.isdigit() or not 0 < int(node_id) <= INT4_MAX:
        raise _invalid(field, f"{field[-1]} is not a valid id")
    return int(node_id)


def _invalid(field: tuple[str, ...], message: str) -> InvalidValue:
    return InvalidValue(Problem(field, message, ProblemCode.INVALID_ID))


def encode_id(type_name: str, key: int) -> str:
    return str(GlobalID(type_name, str(key)))
