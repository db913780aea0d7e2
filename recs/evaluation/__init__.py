"""Offline evaluation: temporal split, ranking metrics, every learner beside reference baselines."""
