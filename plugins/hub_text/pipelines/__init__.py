"""The text tasks: ``base`` (tokenising, windows, saving the tokenizer) and one module per task.

Modules are imported by the dotted paths the plugin's hooks return (``plugin.py``), never here, so
listing the registry imports nothing heavy.
"""
