"""Outputs for people and files: canonical JSON written atomically, and
readable tables for the terminal."""
