"""Tagging evaluation reports for marketing: scores, calibration, thresholds and plots, from reviewed tags in
the database or from a gold file, as JSON and as a self-contained HTML page rendered from that JSON."""
