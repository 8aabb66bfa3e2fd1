"""App-agnostic helpers: settings, image shrinking, encryption at rest, spreadsheet safety, statistics."""
