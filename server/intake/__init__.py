"""The LINE webhook's intake: a small process of its own in front of the server."""
