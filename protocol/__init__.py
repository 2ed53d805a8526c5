"""The two wire contracts: the battery's Modbus register layout and the MQTT topics and payloads."""
