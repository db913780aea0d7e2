"""The versioned REST API (/api/v1/): thin views over recs services and selectors."""
