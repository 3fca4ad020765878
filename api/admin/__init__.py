"""Admin JSON endpoints that belong to no single domain: the audit log."""
