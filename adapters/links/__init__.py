"""Links: processes on the hub's side of a transport, between city systems and the hub's API.

``mqtt_link`` is the MQTT link (``python -m adapters.links --config link.json``);
``mqtt_city`` is a city system's side of it, for integrators, tests and the simulator.
"""
