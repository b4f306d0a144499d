"""The table of options (one declaration each), settings and their validation, the parsers of
one value, the clip and strategy vocabularies, the thresholds (each with its source) and the
``init`` template."""
