"""The HTTP face of the hub: the API for adapters and (later) the duty officers' console.

Nothing imports this package; the command line starts it by name (``hub.console.app``).
"""
