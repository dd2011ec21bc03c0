"""edgewrite: a small LLaMA-family model turned into an offline writing assistant."""

__version__ = "0.1.0"
