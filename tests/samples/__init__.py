"""Reusable test data."""
