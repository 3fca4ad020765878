"""A local emulator of RuStore's server payments API, for development, demos and tests.

It speaks the documented wire format (`/work/shared/rustore-api.md`) and adds a `/control` API for
the other side of the counter (the paying user and the Pay SDK), a movable clock, webhook delivery
and fault injection. It imports nothing from Kopilka so that it checks Kopilka against the
documentation, not against Kopilka's own idea of it.
"""
