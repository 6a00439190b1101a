#!/bin/sh
# Create every topic of hub/bus/topics.py, live and exercise lanes, before the hub starts
# (compose service kafka-init). The broker does not auto-create topics, so a misspelt name
# fails loudly instead of creating a topic nobody reads. Existing topics are left as they are.
#
# Partitions bound how many hub instances of one consumer group share the work; records with
# the same key (incident thread, target jurisdiction) stay in order on one partition.
set -eu

bootstrap="${BOOTSTRAP_SERVER:-kafka:9092}"
partitions="${TOPIC_PARTITIONS:-6}"
replication="${TOPIC_REPLICATION_FACTOR:-1}"

for topic in \
  liandong.incidents.v1 \
  liandong.tasks.v1 \
  liandong.task-updates.v1 \
  liandong.resources.v1 \
  liandong.audit.v1 \
  liandong.deadletter.v1 \
  exercise.liandong.incidents.v1 \
  exercise.liandong.tasks.v1 \
  exercise.liandong.task-updates.v1 \
  exercise.liandong.resources.v1 \
  exercise.liandong.audit.v1 \
  exercise.liandong.deadletter.v1; do
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor "$replication"
done

/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --list
