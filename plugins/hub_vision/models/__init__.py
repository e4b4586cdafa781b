"""ViT (patch front end + shared backbone), timm/torchvision CNN wrappers, and which timm arguments a config may pass.

Modules are imported by the dotted paths the plugin's hooks return (``plugin.py``), never here, so
listing the registry imports nothing heavy.
"""
