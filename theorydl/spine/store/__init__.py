"""theorydl.spine.store."""
