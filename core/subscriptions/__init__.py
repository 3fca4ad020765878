"""Subscriptions: verification, the state RuStore reports, access, and scheduled re-checks."""
