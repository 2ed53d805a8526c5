"""Database: tables, the one session pattern, and migrations."""
