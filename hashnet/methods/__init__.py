"""Hashing methods, one module each."""
