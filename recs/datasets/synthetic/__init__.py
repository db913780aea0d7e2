"""A synthetic shop's event log and catalog: learnable like a real shop, generated at any scale."""
