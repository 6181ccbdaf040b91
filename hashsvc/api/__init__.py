"""The HTTP API (FastAPI): victims' cases and platforms' scans."""
