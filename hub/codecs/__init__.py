"""Codecs between city systems' message formats and the canonical event model.

``hub.codecs.cap``: OASIS CAP 1.2 (and 1.1 on input) XML ↔ the canonical incident.
"""
