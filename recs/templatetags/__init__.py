"""Template tags of the recommendation widget (`{% load recs %}`)."""
