"""Pure data: envelope, incidents, tasks, region and the event registry. No I/O here."""
