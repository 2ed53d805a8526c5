"""MQTT ingest: gateway messages in, live station state in the database."""
