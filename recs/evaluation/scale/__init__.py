"""Training at scale: time and memory of loading a log, fitting every learner, precomputing."""
