"""Experiments: the served-list log, shadow scoring, attribution rollups and their reports."""
