"""Codecs of the adapters: city JSON dialects read and written through declarative mappings."""
