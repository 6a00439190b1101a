"""Drills: recordings of the log, exercise scenarios, and replays of either on a drill's own
hub under a virtual clock, isolated from live operations, with after-action reports and what-if
comparisons."""
