"""Accounts and access: users, passwords, access and refresh tokens, login throttling.

Access tokens are short-lived JWTs checked without a database read; refresh tokens are opaque,
stored only as hashes, rotated on every use, and grouped in families so a replayed token can revoke
everything descended from the same login.
"""
