"""edgewrite: a small LLaMA-family model turned into an offline writing assistant."""

__version__ = "0.1.0"


def quiet_third_party_logs() -> None:
    """Mute library warnings that say nothing actionable on a CPU laptop: torchao failing to load its
    optional CUDA kernels and torch's pytree deprecation notice, printed on every model load."""
    import logging

    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
