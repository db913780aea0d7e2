"""A host shop's own catalog, installed only for tests: what AISLE["CATALOG_SOURCE"] follows."""
