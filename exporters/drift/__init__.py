"""Drift detection: statistics, levels, root cause, and the Prometheus exporter."""
