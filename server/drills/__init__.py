"""Drills (訓練): a simulator scenario played on twin stations, apart from the real ones."""
