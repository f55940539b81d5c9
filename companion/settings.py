"""Profile (how big a run is) and source (hub or offline), both read from the environment.

- ``COMPANION_PROFILE``: ``smoke`` (CI: tiny subsets, a few steps), ``cpu`` (default: real results in
  minutes on a laptop CPU) or ``gpu`` (hub-size models and full data).
- ``COMPANION_SOURCE``: ``auto`` (default: offline when ``HF_HUB_OFFLINE=1`` or the hub does not
  answer), ``hub`` or ``offline``.
- ``COMPANION_CACHE``: where provisioned offline resources and run outputs live
  (default ``$XDG_CACHE_HOME/pretrained-transformers-companion``, ``~/.cache/...`` when unset).

Notebooks never hard-code sizes: they read them from :func:`profile`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROFILE_VAR = "COMPANION_PROFILE"
SOURCE_VAR = "COMPANION_SOURCE"
CACHE_VAR = "COMPANION_CACHE"
SEED = 0


@dataclass(frozen=True)
class Profile:
    """Sizes every chapter asks for. ``None`` row limits mean the whole split."""

    name: str
    train_rows: int | None
    eval_rows: int | None
    epochs: float
    batch_size: int
    max_length: int
    evals_per_epoch: int
    large_lr_epochs: float
    decoder_train_rows: int | None  # GPT-style fine-tuning: a pretrained decoder is ~10x slower per row
    lm_layers: int  # the small GPT-2 pretrained from scratch: layers, width, context,
    lm_width: int
    lm_context: int
    lm_steps: int  # and optimizer steps (batch_size blocks each). gpu: 1,200, about 8 passes over Brown's
    # training blocks; on an H100, held-out perplexity was 161.6 after 1,200 steps and rose again in longer runs
    lm_eval_blocks: int | None  # validation blocks scored along the way (None: all)
    lm_eval_texts: int  # held-out documents (first lm_eval_chars characters) for perplexity
    lm_eval_chars: int
    decode_samples: int  # continuations per decoding strategy, and their length in tokens
    decode_tokens: int
    icl_test_rows: int  # test sentences scored per in-context-learning setting
    icl_shots: tuple[int, ...]  # numbers of worked examples in the prompt
    icl_draws: int  # random draws of the examples per number of shots
    icl_orders: int  # orderings of the same four examples
    chat_rows: int  # test sentences sent through the chat endpoint
    mlm_length: int  # the small BERT: longest sentence pair in tokens, and optimizer steps
    mlm_steps: int
    mlm_head_sentences: int | None  # masked Brown sentences that train a masked-LM head on the frozen encoder,
    mlm_head_epochs: float  # and its epochs over their vectors
    task_train_rows: int | None  # fine-tuning rows per BERT task (pairs, tags, questions)
    task_eval_rows: int | None  # and validation / test rows
    task_epochs: float  # epochs per BERT task
    qa_train_rows: int | None  # training questions (each is one to a few windows)
    qa_max_length: int  # question + context window, and the overlap of consecutive windows
    qa_stride: int
    t5_task_rows: int | None  # text-to-text fine-tuning: training pairs per task, epochs, longest input
    t5_epochs: float
    t5_max_source: int
    t5_single_epochs: float  # epochs of the one-task (sentiment) text-to-text runs
    t5_steps: int  # span-corruption pretraining steps of the small T5 (batch_size blocks of lm_context tokens)
    strategy_train_rows: int | None  # fine-tuning strategies compared (full, head, top blocks, LoRA): training
    strategy_epochs: float  # sentences and epochs of each
    chinese_train_rows: int | None  # Chinese reviews: training rows for the decoder with LoRA and the encoder,
    chinese_test_rows: int | None  # test (and validation) rows every model is scored on,
    chinese_shots: int  # and worked examples in the base decoder's few-shot prompt
    sft_rows_per_task: int | None  # instruction tuning: training records per task, epochs over them,
    sft_epochs: float
    sft_heldout_per_task: int  # and held-out prompts per task answered before and after


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", train_rows=192, eval_rows=96, epochs=1, batch_size=16, max_length=64,
                     evals_per_epoch=2, large_lr_epochs=0.5, decoder_train_rows=48,
                     lm_layers=2, lm_width=64, lm_context=64,
                     lm_steps=6, lm_eval_blocks=16, lm_eval_texts=2, lm_eval_chars=400,
                     decode_samples=2, decode_tokens=16, icl_test_rows=8, icl_shots=(0, 1, 4), icl_draws=2,
                     icl_orders=3, chat_rows=4, mlm_length=64, mlm_steps=6, mlm_head_sentences=64,
                     mlm_head_epochs=1, task_train_rows=64, task_eval_rows=32, task_epochs=1, qa_train_rows=32,
                     qa_max_length=128, qa_stride=32,
                     t5_task_rows=32, t5_epochs=1, t5_max_source=128,
                     t5_single_epochs=1, t5_steps=6, strategy_train_rows=64, strategy_epochs=1,
                     chinese_train_rows=32, chinese_test_rows=16, chinese_shots=2, sft_rows_per_task=8,
                     sft_epochs=1, sft_heldout_per_task=4),
    "cpu": Profile("cpu", train_rows=10_000, eval_rows=None, epochs=2, batch_size=32, max_length=64,
                   evals_per_epoch=2, large_lr_epochs=0.5, decoder_train_rows=400,
                   lm_layers=4, lm_width=128, lm_context=128,
                   lm_steps=160, lm_eval_blocks=128, lm_eval_texts=12, lm_eval_chars=1_500,
                   decode_samples=5, decode_tokens=40, icl_test_rows=100, icl_shots=(0, 1, 2, 4, 8, 16),
                   icl_draws=3, icl_orders=8, chat_rows=40, mlm_length=64, mlm_steps=200,
                   mlm_head_sentences=4_000, mlm_head_epochs=3,
                   task_train_rows=1_500, task_eval_rows=500, task_epochs=1,
                   qa_train_rows=320, qa_max_length=192, qa_stride=64,
                   t5_task_rows=1_000, t5_epochs=3, t5_max_source=256,
                   t5_single_epochs=10, t5_steps=160, strategy_train_rows=1_500,
                   strategy_epochs=2, chinese_train_rows=960, chinese_test_rows=300, chinese_shots=8,
                   sft_rows_per_task=60, sft_epochs=1, sft_heldout_per_task=24),
    "gpu": Profile("gpu", train_rows=None, eval_rows=None, epochs=3, batch_size=32, max_length=128,
                   evals_per_epoch=4, large_lr_epochs=1, decoder_train_rows=None,
                   lm_layers=6, lm_width=384, lm_context=256,
                   lm_steps=1_200, lm_eval_blocks=None, lm_eval_texts=52, lm_eval_chars=5_000,
                   decode_samples=10, decode_tokens=100, icl_test_rows=872,
                   icl_shots=(0, 1, 2, 4, 8, 16, 32), icl_draws=10, icl_orders=24, chat_rows=200,
                   mlm_length=128, mlm_steps=5_000, mlm_head_sentences=None, mlm_head_epochs=3,
                   task_train_rows=None, task_eval_rows=None, task_epochs=2,
                   qa_train_rows=None, qa_max_length=384, qa_stride=128,
                   t5_task_rows=None, t5_epochs=3, t5_max_source=512,
                   t5_single_epochs=10, t5_steps=3_000, strategy_train_rows=None,
                   strategy_epochs=3, chinese_train_rows=None, chinese_test_rows=None, chinese_shots=8,
                   sft_rows_per_task=1_000, sft_epochs=2, sft_heldout_per_task=100),
}

SOURCES = ("hub", "offline")


class ConfigError(ValueError):
    """An environment variable holds a value the companion does not know."""


def task_profile(base: Profile | None = None) -> Profile:
    """The profile with ``train_rows`` / ``eval_rows`` / ``epochs`` set to its ``task_*`` sizes: those
    of the BERT chapter's fine-tuning tasks."""
    base = base or profile()
    return dataclasses.replace(base, train_rows=base.task_train_rows, eval_rows=base.task_eval_rows,
                               epochs=base.task_epochs)


def profile() -> Profile:
    """The active :class:`Profile`, from ``COMPANION_PROFILE`` (default ``cpu``)."""
    name = os.environ.get(PROFILE_VAR, "cpu").strip().lower() or "cpu"
    if name not in PROFILES:
        raise ConfigError(f"{PROFILE_VAR}={name!r} is not a profile; use one of {', '.join(PROFILES)}.")
    return PROFILES[name]


def setup_chapter() -> Profile:
    """What every chapter runs first: seed Python's, NumPy's and torch's random generators with
    :data:`SEED` (``transformers.set_seed``), print the profile, the source, torch's threads and whether
    a GPU is there, and return the active :class:`Profile`."""
    import torch
    from transformers import set_seed

    active = profile()
    set_seed(SEED)
    print(f"profile={active.name} source={source()} torch threads={torch.get_num_threads()}"
          f" GPU={'yes' if torch.cuda.is_available() else 'no'}")
    return active


def hub_endpoint() -> str:
    """The hub address: ``HF_ENDPOINT`` (a mirror) when set, else huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


@functools.lru_cache(maxsize=None)
def hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """True when ``endpoint`` answers an HTTP request within ``timeout`` seconds (any status)."""
    try:
        urllib.request.urlopen(f"{endpoint}/api/models?limit=1", timeout=timeout)
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status
    except (urllib.error.URLError, OSError):
        return False
    return True


def source() -> str:
    """``"hub"`` or ``"offline"``: ``COMPANION_SOURCE`` when set, else decided automatically."""
    wanted = os.environ.get(SOURCE_VAR, "auto").strip().lower() or "auto"
    if wanted in SOURCES:
        return wanted
    if wanted != "auto":
        raise ConfigError(f"{SOURCE_VAR}={wanted!r} is not a source; use auto, hub or offline.")
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "offline"
    return "hub" if hub_reachable(hub_endpoint()) else "offline"


def cache_dir() -> Path:
    """The folder for provisioned resources and run outputs, created on first use: ``COMPANION_CACHE``,
    else ``pretrained-transformers-companion`` in ``XDG_CACHE_HOME`` (``~/.cache`` when unset), the
    convention the Hugging Face libraries follow too."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pretrained-transformers-companion"
    path = Path(os.environ.get(CACHE_VAR) or default).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
