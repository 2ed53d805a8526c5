"""Crews on LINE WORKS: alert routing, paging, and the buttons they answer with."""
