"""Scenario 29: every operation of /schema/openapi.json fuzzed with a valid token of each role.

Schemathesis generates valid and invalid requests from the schema and runs its checks on every
answer: no 5xx, a documented status code, content type and body, invalid data refused with a 4xx.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import Case

schema = schemathesis.pytest.from_fixture("api_schema")


def addresses_another_operation(case: Case) -> bool:
    """A generated path value that spells a sibling route's literal segment ("status" for
    /api/subscriptions/{subscription_id}) is a request to that other operation, which
    answers it as documented for itself, not a malformed id for this one."""
    formatted = case.formatted_path
    literal_paths = case.operation.schema.raw_schema["paths"]
    return formatted != case.path and formatted in literal_paths


@pytest.mark.slow
@schema.parametrize()
def test_api_answers_every_request_as_documented(case: Case) -> None:
    if addresses_another_operation(case):
        return
    case.call_and_validate(
        timeout=30,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
