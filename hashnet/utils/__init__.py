"""Small utilities every layer may use: errors, atomic file writes, rank-0 logging, the sign convention, the run lock."""
