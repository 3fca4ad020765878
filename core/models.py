"""Every table's model, imported in one place so Alembic and tests see the whole schema."""

from core.db import Base
from core.diagnostics.models import DiagnosticPing

__all__ = ["Base", "DiagnosticPing"]
