"""Transports between city systems and the hub: MQTT today (``mqtt``), HTTP and Kafka to come.

Only ``adapters/transports/mqtt*`` may import aiomqtt, and only the Kafka transport aiokafka
(``tests/test_architecture.py``); everything else uses the typed wrappers here.
"""
