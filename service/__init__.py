"""hcp-content: content tagging and recommendation for life-sciences marketing."""

__version__ = "0.1.0"
