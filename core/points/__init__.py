"""The points ledger: append-only entries plus a balance per user, changed in one transaction.

A balance can never go below zero (a CHECK constraint and conditional updates), ledger rows can
never be changed or removed (a trigger), and a unique key on (source, source id, kind) makes a
second credit for the same purchase impossible however often a job runs.
"""
