"""Fakes that the tests and the benchmarks share: a fake OpenAI-compatible server, canned answers,
a corpus of awkward photos and a throw-away Redis server. Never imported by the app."""
