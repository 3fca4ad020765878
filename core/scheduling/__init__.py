"""Claims of scheduled-job slots: one scheduler runs a once-a-day job, even when two are running.

A slot (say, reconciliation of 2026-11-22) is claimed by inserting its row; the second scheduler's
insert finds it and skips. A claim whose run never finished (the scheduler was killed) can be taken
over once its lease has passed, so a killed run resumes instead of being lost.
"""
