"""The original backend's HTTP API under /api/v1: bearer tokens, the same engine as the pages, JSON errors."""
