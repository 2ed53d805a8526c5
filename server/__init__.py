"""The server: live station state from MQTT, slot booking, incidents, REST API, dashboard."""
