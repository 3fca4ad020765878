"""Idempotency keys as Stripe and the IETF draft use them.

A repeat with the same key and body replays the first answer; the same key with another body is
422; a request racing one still in progress is 409; keys are scoped per user and kept at least
24 hours. The record is written in the same transaction as the work it guards, so an answer is
stored exactly when the work is committed.
"""
