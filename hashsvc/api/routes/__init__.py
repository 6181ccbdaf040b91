"""Routers, one per audience."""
