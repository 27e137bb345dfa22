"""Comparing a rewritten model with its reference."""
