"""The recommendation engine: events, features, learners, candidate cache, serving, API."""
