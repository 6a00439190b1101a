"""The resource registry: a catalogue of supplies, depots per jurisdiction, and stock kept as an
append-only ledger whose balances are derived from it; holds and sharing under agreements."""
