"""Training: build the training set from the event log, fit, evaluate, version, precompute."""
