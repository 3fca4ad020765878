"""Query parameters shared by every paged listing."""

from typing import Annotated

from litestar.params import QueryParameter

# Litestar applies bounds given as a QueryParameter; a msgspec.Meta inside FromQuery is ignored.
PageLimit = Annotated[int, QueryParameter(ge=1, le=100, description="Items per page, 1 to 100")]
