"""Bulk import of historic events from CSV or JSON Lines files into the event log."""
