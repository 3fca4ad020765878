"""RuStore server notifications: a journal of what RuStore told us, and acting on it.

A notification only says that something changed. The api stores it and answers 200 at once; a
`notification.process` job re-reads the invoice from RuStore and hands the purchase to the
purchase pipeline, which alone decides what is credited.
"""
