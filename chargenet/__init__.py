"""The `chargenet` command: the one place that knows every part of the system."""
