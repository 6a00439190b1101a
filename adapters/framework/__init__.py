"""The adapter framework: how a city command system is connected to the hub.

An adapter is a folder with an ``adapter.yaml`` (:mod:`.manifest`), a codec and its mapping
(:mod:`.codec`), and fixtures (:mod:`.fixtures`). Adapters are found by their manifest
(:mod:`.discovery`), never imported, and run by :mod:`.runner`: the city's messages go up
through the codec to the hub's HTTP API (:mod:`.upstream`, by :mod:`.http_in` or
:mod:`.kafka_bridge`), the hub's tasks go down through the codec to the city
(:mod:`.task_feed`, by :mod:`.http_out` with its :mod:`.breaker`, or to the city's Kafka topic).
``liandong adapter ...`` is :mod:`.cli`.
"""
