"""The candidate cache in Redis: precomputed lists that the render path reads."""
