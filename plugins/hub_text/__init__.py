"""Hub's built-in text plugin: BERT-family models on the shared backbone."""
