"""The package's version: a kernel module every part may import (hatch's ``__about__``)."""

__version__ = "0.1.0"
