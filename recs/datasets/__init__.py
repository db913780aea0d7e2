"""Importers of public data sets used by the demo, training and offline evaluation."""
