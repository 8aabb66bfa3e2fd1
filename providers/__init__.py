"""The provider adapters: one small class per provider (`providers.registry`) on one base (`providers.base`).

A new provider is one class in `providers/registry.py`, its settings in `utils/settings.py` and a line in the
README; nothing else changes.
"""
