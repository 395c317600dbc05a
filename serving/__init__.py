"""Serving: SavedModel export (`serving.export`), a TF-Serving-compatible gRPC/REST server (`serving.server`), its client (`serving.client`) and load test (`serving.loadtest`)."""
