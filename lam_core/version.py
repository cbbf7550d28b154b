"""The version of lam-studio: the one place (pyproject.toml reads it without importing it)."""

__version__ = "0.1.0"
