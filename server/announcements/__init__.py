"""Operators' announcements to residents on LINE (issue 13, item 2)."""
