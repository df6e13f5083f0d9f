"""Reporting: run folders as tables, statistics, figures and the summary."""
