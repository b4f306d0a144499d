"""Pure judgement: classification of a probe's run, the --fail-on gate, explanations,
advice, per-class quality and the recommendation. No I/O, no rich."""
