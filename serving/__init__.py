"""Serving: SavedModel export and a TF-Serving-compatible server and client (issue #4, not built yet)."""
