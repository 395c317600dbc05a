"""Serving: SavedModel export in TF Serving's layout (`serving.export`); the gRPC/REST server and client are issue #4."""
