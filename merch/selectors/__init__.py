"""Reads of merch, one module per domain: the only part of merch that recs reads."""
