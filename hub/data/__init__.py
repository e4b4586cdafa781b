"""Data readers shared by every modality."""

from hub.data.labels import label_name, resolve_labels
from hub.data.readers import read_located_records, read_records, read_text

__all__ = ["label_name", "read_located_records", "read_records", "read_text", "resolve_labels"]
