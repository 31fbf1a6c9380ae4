"""Evaluation: metrics over held-out pairs and the self-contained HTML results page."""
