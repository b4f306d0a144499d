"""The terminal report (rich): the only place besides ``cli`` that imports rich."""
