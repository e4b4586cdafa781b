"""Data readers shared by every modality."""

from hub.data.readers import read_records

__all__ = ["read_records"]
