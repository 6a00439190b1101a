"""Adapters: each city command system's own messages to canonical events and back.

The hub never imports this package; adapters talk to the hub over its API (or the bus).
"""
