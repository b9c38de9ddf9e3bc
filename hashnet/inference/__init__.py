"""A trained checkpoint at work: loading it (checkpoint), images -> packed codes (encoding), the Python API (hasher)."""
