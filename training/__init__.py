"""Training, benchmarking and demo entry points (`python -m training.<module>`)."""
