"""Evaluation harnesses: tagging accuracy against gold labels (the project's own and public benchmarks)."""
