"""Diagnostic pings: a round trip api → PostgreSQL → queue → worker → PostgreSQL.

Ops send one to prove the whole pipeline moves; the scheduler sends one on an interval, so the age
of the newest processed ping tells whether workers are alive.
"""
