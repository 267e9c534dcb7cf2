"""Tagging: embeddings and keywords propose, learned heads sharpen, the LLM decides."""
