"""moahook composition root: settings, logging, CLI and wiring."""

__version__ = "0.1.0"
