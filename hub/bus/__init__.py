"""The shared bus: one interface (``port``), topic names, and the backends behind it."""
