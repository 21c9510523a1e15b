"""Corpus listing and sharding, decoding and frame sampling, alignment, the feature store."""
