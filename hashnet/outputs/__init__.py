"""What runs leave behind: metrics.json, plots, and report tables over many runs."""
