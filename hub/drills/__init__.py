"""Drills: recordings of the hub's log (export, trim, anonymise) and scripted exercise scenarios."""
