"""theorydl.data."""
