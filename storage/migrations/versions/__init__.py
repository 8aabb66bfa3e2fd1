"""The store's revisions, oldest first; see storage/migrations/__init__.py."""
