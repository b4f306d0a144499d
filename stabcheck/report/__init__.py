"""Views of a RunReport: JSON, JUnit, Markdown, HTML (+ assets). ``report.terminal``
is the only place that imports rich."""
