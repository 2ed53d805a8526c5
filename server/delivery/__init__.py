"""Sending to people: one durable outbox for LINE and LINE WORKS, and the sender that drains it."""
