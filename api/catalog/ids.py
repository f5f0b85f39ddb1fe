"""Relay global ids in, database keys out, with a reason when an id is not usable.

The one decoder of ids: resolvers, the catalogue's descriptions and the query planner use it.
"""

from strawberry.relay import GlobalID, from_base64

from api.catalog.keys import INT4_MAX
from api.catalog.problems import Problem, ProblemCode


def decode_id(value: str, *, type_name: str, field: tuple[str, ...]) -> int | Problem:
    """The integer key inside a global id of `type_name`, or the problem with it."""
    try:  # GlobalID.from_id's parsing, without building a GlobalID: this runs per request
        id_type, node_id = from_base64(value)
    except ValueError:
        return Problem(field, f"{field[-1]} is not a valid id", ProblemCode.INVALID_ID)
    if id_type != type_name:
        return Problem(
            field,
            f"{field[-1]} is the id of a {id_type}, not of a {type_name}",
            ProblemCode.INVALID_ID,
        )
    if not node_id.isascii() or not node_id.isdigit() or not 0 < int(node_id) <= INT4_MAX:
        return Problem(field, f"{field[-1]} is not a valid id", ProblemCode.INVALID_ID)
    return int(node_id)


def encode_id(type_name: str, key: int) -> str:
    return str(GlobalID(type_name, str(key)))
