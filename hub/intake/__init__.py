"""Intake: validate an incident, authorise its sender, deduplicate, store, publish."""
