"""theorydl.store."""
