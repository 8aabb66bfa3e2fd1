"""The assessment engine: one request in, one result out, for the pages, the API, the command line and the benchmarks.

`engine.core.Engine` checks the input, chooses the providers and runs an assessment through them within its
time budget; `startup.build_engine(settings)` builds it with its backends (cache, store, history, job runner).
"""
