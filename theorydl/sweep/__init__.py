"""theorydl.sweep."""
