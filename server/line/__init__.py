"""Residents on LINE: the webhook, the conversation, and what they are told."""
