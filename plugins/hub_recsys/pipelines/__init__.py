"""The ``recommend`` task: the pipeline, its per-request policy, training glue and side files.

Modules are imported by the dotted paths the plugin's hooks return (``plugin.py``), never here, so
listing the registry imports nothing heavy.
"""
