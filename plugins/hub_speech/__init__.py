"""Hub's built-in speech plugin: speech recognition and audio classification on the shared backbone."""
