"""Writes to merch, one module per domain: catalog, merchandising, experiments."""
