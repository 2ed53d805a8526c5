"""The edge program: poll batteries over Modbus, publish over MQTT, store and forward."""
