"""The answer contract and its value types: classes, request, result, errors, prompt, parser.

Pure Python: nothing here does I/O or knows about providers, storage or the UI, so it is
cheap to import and easy to test.
"""
