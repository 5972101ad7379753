"""Evaluation: the metrics, the image datasets' reference classifier, gradient-flow diagnostics."""
