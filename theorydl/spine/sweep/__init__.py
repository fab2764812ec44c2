"""theorydl.spine.sweep."""
