"""edgewrite: a small LLaMA-family model turned into an offline writing assistant."""

__version__ = "0.1.0"


def quiet_third_party_logs() -> None:
    """Mute library warnings that say nothing actionable on a CPU laptop: torchao failing to load its
    optional CUDA kernels, torch's pytree deprecation notice (printed on every model load) and
    transformers' rename notice for gradient checkpointing (printed by its own Trainer)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TQDM_DISABLE", "1")  # libraries' tqdm bars; edgewrite's own progress is rich's
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def quiet_gptqmodel() -> None:
    """GPT-QModel prints a banner and environment notes when imported, and PEFT imports it whenever it
    is installed (to recognize quantized layers), so `tune` and `merge` would print it too. Its logger
    is logbar's shared instance; errors still show."""
    import logging

    try:
        from logbar import LogBar
    except ImportError:
        return
    LogBar.shared().setLevel(logging.ERROR)
