"""The speech path: text → cache key → job → engine → encoded audio in the cache."""
