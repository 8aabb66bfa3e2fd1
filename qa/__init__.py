"""Provider QA: one case read by several providers, batch runs over labelled cases, their figures and report,
and the labelled set the clinicians' reviews make. Runs on an `engine.core.Engine` handed in."""
