"""Settings and their validation, the clip and strategy vocabularies, the thresholds
(each with its source) and the ``init`` template."""
