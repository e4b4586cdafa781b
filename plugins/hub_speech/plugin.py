"""Registrations of the built-in speech plugin (data only; nothing heavy is imported)."""

from __future__ import annotations
