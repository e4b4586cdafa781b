"""BERT-family encoders and GPT/Llama decoders on the shared backbone, decoding, and the transformers converters.

Modules are imported by the dotted paths the plugin's hooks return (``plugin.py``), never here, so
listing the registry imports nothing heavy.
"""
