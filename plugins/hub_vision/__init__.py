"""Hub's built-in vision plugin: Vision Transformers on the shared backbone (timm ViT converter)."""
