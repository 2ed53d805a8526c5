"""The simulated charging battery: a SunSpec Modbus device on serial lines and TCP."""
