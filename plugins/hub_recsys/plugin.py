"""Registrations of the built-in recommender plugin (data only; nothing heavy is imported)."""

from __future__ import annotations
