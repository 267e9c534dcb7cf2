"""Indexers: read a content repository (files and news feeds) into documents with provenance."""
