"""hashsvc: victims submit perceptual hashes of their images; platforms scan uploads."""

__version__ = "0.1.0"
