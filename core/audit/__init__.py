"""The audit log: who did what to which object, when, with what before and after; append-only."""
