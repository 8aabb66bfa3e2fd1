"""Helpers the engine and the pages share: settings, image shrinking, the answer cache."""
