"""Shopper events: validation, the durable stream, and the event log (offline store)."""
