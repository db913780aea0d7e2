"""Observability, the read and report side: heartbeat, selectors, Prometheus, admin dashboards."""
