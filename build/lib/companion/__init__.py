"""Companion code of the executable book on pretrained transformers.

``settings`` chooses profile and source, ``resources`` and ``data`` hand out models and data sets by
name, ``training`` fine-tunes with Trainer, ``metrics`` scores, ``results`` records the figures.
"""

from . import baselines, data, heads, metrics, plots, resources, results, settings, tokens, training

__all__ = ["baselines", "data", "heads", "metrics", "plots", "resources", "results", "settings", "tokens", "training"]
__version__ = "0.1.0"
