"""Offline evaluation: recorded-incident formats, importers, replay, scoring, reports."""
