"""tpplan: plan GPUs, parallel layouts and cost for LLM serving and training."""

__version__ = "0.1.0"
