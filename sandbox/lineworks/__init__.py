"""The LINE WORKS stand-in: token endpoint, bot message endpoints, signed callbacks, web view."""
