"""Hub's speech encoders (log-mel front end + shared backbone), wav2vec2 CTC recognisers, and their layers.

Modules are imported by the dotted paths the plugin's hooks return (``plugin.py``), never here, so
listing the registry imports nothing heavy.
"""
