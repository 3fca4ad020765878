"""Dramatiq actors and the APScheduler process. Actors are thin: load ids, call `core` services."""
