"""Scenario 29: every operation of /schema/openapi.json fuzzed with a valid token of each role.

Schemathesis generates valid and invalid requests from the schema and runs its checks on every
answer: no 5xx, a documented status code, content type and body, invalid data refused with a 4xx.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import Case

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
def test_api_answers_every_request_as_documented(case: Case) -> None:
    case.call_and_validate(
        timeout=30,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
