"""API fuzzing against the OpenAPI schema (schemathesis); see docs/fuzzing.md."""
