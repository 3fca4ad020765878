"""Query parameters shared by every paged listing."""

import re
from typing import Annotated

from litestar.params import QueryParameter

from core.errors import InvalidRequestError

# Litestar applies bounds given as a QueryParameter; a msgspec.Meta inside FromQuery is ignored.
PageLimit = Annotated[int, QueryParameter(ge=1, le=100, description="Items per page, 1 to 100")]

ID_CURSOR = re.compile(r"[0-9]{1,19}")
MAX_ID = 2**63 - 1  # bigint ids: ledger entries, audit entries


def id_cursor(cursor: str | None) -> int | None:
    """The row id a cursor carries; anything else is a 400, never a database error."""
    if cursor is None:
        return None
    if not ID_CURSOR.fullmatch(cursor) or int(cursor) > MAX_ID:
        raise InvalidRequestError("cursor: not a cursor this api returned", code="invalid_cursor")
    return int(cursor)
