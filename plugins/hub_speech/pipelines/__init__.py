"""The speech tasks: ``base`` (audio decoding, chunking) and one module per task.

Modules are imported by the dotted paths the plugin's hooks return (``plugin.py``), never here, so
listing the registry imports nothing heavy.
"""
