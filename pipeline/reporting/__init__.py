"""Reporting: the claims' rules, the report page, the MLflow model registry, ``zoo show``."""
