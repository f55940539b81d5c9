"""Profile (how big a run is) and source (hub or offline), both read from the environment.

- ``COMPANION_PROFILE``: ``smoke`` (CI: tiny subsets, a few steps), ``cpu`` (default: real results in
  minutes on a laptop CPU) or ``gpu`` (hub-size models and full data).
- ``COMPANION_SOURCE``: ``auto`` (default: offline when ``HF_HUB_OFFLINE=1`` or the hub does not
  answer), ``hub`` or ``offline``.
- ``COMPANION_CACHE``: where provisioned offline resources and run outputs live
  (default ``$XDG_CACHE_HOME/pretrained-transformers-companion``, ``~/.cache/...`` when unset).

Notebooks never hard-code sizes: they read them from :func:`profile`, one section per concern
(``profile.gpt.steps``, ``profile.qa.stride``).
"""

from __future__ import annotations

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
class Finetune:
    """Classifier fine-tuning (the fine-tuning workflow chapter, and every chapter that fine-tunes like it)."""

    train_rows: int | None
    eval_rows: int | None  # validation and test rows each
    epochs: float
    large_lr_epochs: float  # the run with a too-large learning rate
    decoder_train_rows: int | None  # GPT-style fine-tuning: a pretrained decoder is ~10x slower per row


@dataclass(frozen=True)
class Loop:
    """The training-by-hand chapter."""

    train_rows: int | None  # the loop and its Trainer twin: training rows, validation / test rows, epochs
    eval_rows: int | None
    epochs: int
    precision_steps: int  # optimizer steps timed in fp32 and in bf16 autocast
    small_rows: int  # the small training set run long (overfitting, early stopping), and its epochs
    small_epochs: int


@dataclass(frozen=True)
class Curves:
    """The chapter on what pretraining buys: learning curves, the Brown genres, one process against two."""

    rows: tuple[int, ...]  # labelled training sentences per point of the learning curves,
    seeds: int  # samples and initialisations per point,
    min_steps: int  # and optimizer steps at least, however small the sample
    eval_rows: int | None  # validation and test sentences (each point is scored on the test split)
    genre_documents: int | None  # Brown training documents, cut into passages of passage_words words:
    passage_words: int  # train_passages of each training document, eval_passages of each held-out one
    train_passages: int | None
    eval_passages: int | None
    genre_epochs: float
    process_rows: int  # sentences the 1- and 2-process runs train on (whole batches)


@dataclass(frozen=True)
class Small:
    """The small models pretrained from scratch here (GPT-2, BERT, T5 share the shape)."""

    layers: int
    width: int
    context: int  # tokens per block of text (GPT-2's positions; T5's span-corruption blocks)
    eval_blocks: int | None  # validation blocks scored along the way (None: all)


@dataclass(frozen=True)
class Gpt:
    """The GPT chapter."""

    steps: int  # optimizer steps of the small GPT-2 (batch_size blocks each). gpu: 1,200, about 8 passes
    # over Brown's training blocks; on an H100, held-out perplexity was 161.6 after 1,200 steps and rose
    # again in longer runs
    eval_texts: int  # held-out documents (first eval_chars characters) for perplexity
    eval_chars: int
    decode_samples: int  # continuations per decoding strategy, and their length in tokens
    decode_tokens: int


@dataclass(frozen=True)
class Bert:
    """The BERT chapter's small BERT and masked-LM head."""

    length: int  # the small BERT: longest sentence pair in tokens, and optimizer steps
    steps: int
    head_sentences: int | None  # masked Brown sentences that train a masked-LM head on the frozen encoder,
    head_epochs: float  # and its epochs over their vectors


@dataclass(frozen=True)
class Tasks:
    """The BERT chapter's fine-tuning tasks (sentence pairs, tags, questions, sentiment)."""

    train_rows: int | None
    eval_rows: int | None
    epochs: float


@dataclass(frozen=True)
class Qa:
    """Extractive question answering."""

    train_rows: int | None  # training questions (each is one to a few windows)
    max_length: int  # question + context window, and the overlap of consecutive windows
    stride: int


@dataclass(frozen=True)
class T5:
    """The T5 chapter."""

    task_rows: int | None  # text-to-text fine-tuning: training pairs per task, epochs, longest input
    epochs: float
    max_source: int
    steps: int  # span-corruption pretraining steps of the small T5 (batch_size blocks of small.context tokens)
    warm_tasks: tuple[str, ...]  # the warm-started encoder-decoder: its tasks, training pairs per task
    warm_rows: int  # (balanced), epochs and longest input
    warm_epochs: float
    warm_source: int


@dataclass(frozen=True)
class Icl:
    """The prompting chapter."""

    test_rows: int  # test sentences scored per in-context-learning setting
    shots: tuple[int, ...]  # numbers of worked examples in the prompt
    draws: int  # random draws of the examples per number of shots
    orders: int  # orderings of the same four examples
    chat_rows: int  # test sentences sent through the chat endpoint


@dataclass(frozen=True)
class Strategies:
    """The fine-tuning strategies compared (full, head, top blocks, LoRA, QLoRA)."""

    train_rows: int | None
    epochs: float


@dataclass(frozen=True)
class Chinese:
    """Chinese reviews in the decoder fine-tuning chapter."""

    train_rows: int | None  # training rows for the decoder with LoRA and the encoder,
    test_rows: int | None  # test (and validation) rows every model is scored on,
    shots: int  # and worked examples in the base decoder's few-shot prompt


@dataclass(frozen=True)
class Sft:
    """Instruction tuning in the decoder fine-tuning chapter."""

    rows_per_task: int | None  # training records per task, epochs over them,
    epochs: float
    heldout_per_task: int  # and held-out prompts per task answered before and after


@dataclass(frozen=True)
class Profile:
    """Sizes every chapter asks for, one section per concern; the training choices every run shares at
    the top. ``None`` row limits mean the whole split."""

    name: str
    batch_size: int
    max_length: int  # longest tokenized sentence for classifiers
    evals_per_epoch: int
    finetune: Finetune
    loop: Loop
    curves: Curves
    small: Small
    gpt: Gpt
    bert: Bert
    tasks: Tasks
    qa: Qa
    t5: T5
    icl: Icl
    strategies: Strategies
    chinese: Chinese
    sft: Sft


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke", batch_size=16, max_length=64, evals_per_epoch=2,
        finetune=Finetune(train_rows=192, eval_rows=96, epochs=1, large_lr_epochs=0.5, decoder_train_rows=48),
        loop=Loop(train_rows=64, eval_rows=32, epochs=1, precision_steps=1, small_rows=32, small_epochs=3),
        curves=Curves(rows=(16, 32), seeds=1, min_steps=2, eval_rows=32, genre_documents=60, passage_words=30,
                      train_passages=1, eval_passages=1, genre_epochs=1, process_rows=32),
        small=Small(layers=2, width=64, context=64, eval_blocks=16),
        gpt=Gpt(steps=6, eval_texts=2, eval_chars=400, decode_samples=2, decode_tokens=16),
        bert=Bert(length=64, steps=6, head_sentences=64, head_epochs=1),
        tasks=Tasks(train_rows=64, eval_rows=32, epochs=1),
        qa=Qa(train_rows=32, max_length=128, stride=32),
        t5=T5(task_rows=32, epochs=1, max_source=128, steps=6,
               warm_tasks=("sentiment", "genre", "qa"), warm_rows=8, warm_epochs=1, warm_source=64),
        icl=Icl(test_rows=8, shots=(0, 1, 4), draws=2, orders=3, chat_rows=4),
        strategies=Strategies(train_rows=64, epochs=1),
        chinese=Chinese(train_rows=32, test_rows=16, shots=2),
        sft=Sft(rows_per_task=8, epochs=1, heldout_per_task=4)),
    "cpu": Profile(
        "cpu", batch_size=32, max_length=64, evals_per_epoch=2,
        finetune=Finetune(train_rows=10_000, eval_rows=None, epochs=2, large_lr_epochs=0.5, decoder_train_rows=400),
        loop=Loop(train_rows=1_600, eval_rows=500, epochs=2, precision_steps=1, small_rows=160, small_epochs=12),
        curves=Curves(rows=(32, 128, 512), seeds=3, min_steps=12, eval_rows=500, genre_documents=None,
                      passage_words=50, train_passages=3, eval_passages=4, genre_epochs=3, process_rows=256),
        small=Small(layers=4, width=128, context=128, eval_blocks=128),
        gpt=Gpt(steps=160, eval_texts=12, eval_chars=1_500, decode_samples=5, decode_tokens=40),
        bert=Bert(length=64, steps=200, head_sentences=4_000, head_epochs=3),
        tasks=Tasks(train_rows=1_500, eval_rows=500, epochs=1),
        qa=Qa(train_rows=320, max_length=192, stride=64),
        t5=T5(task_rows=1_000, epochs=3, max_source=256, steps=160, warm_tasks=("sentiment",),
               warm_rows=1_000, warm_epochs=2, warm_source=128),
        icl=Icl(test_rows=100, shots=(0, 1, 2, 4, 8, 16), draws=3, orders=8, chat_rows=40),
        strategies=Strategies(train_rows=1_500, epochs=2),
        chinese=Chinese(train_rows=800, test_rows=300, shots=8),
        sft=Sft(rows_per_task=40, epochs=1, heldout_per_task=24)),
    "gpu": Profile(
        "gpu", batch_size=32, max_length=128, evals_per_epoch=4,
        finetune=Finetune(train_rows=None, eval_rows=None, epochs=3, large_lr_epochs=1, decoder_train_rows=None),
        loop=Loop(train_rows=None, eval_rows=None, epochs=3, precision_steps=100, small_rows=500, small_epochs=20),
        curves=Curves(rows=(32, 100, 300, 1_000, 3_000, 10_000), seeds=5, min_steps=20, eval_rows=None,
                      genre_documents=None, passage_words=100, train_passages=None, eval_passages=None,
                      genre_epochs=3, process_rows=2_048),
        small=Small(layers=6, width=384, context=256, eval_blocks=None),
        gpt=Gpt(steps=1_200, eval_texts=52, eval_chars=5_000, decode_samples=10, decode_tokens=100),
        bert=Bert(length=128, steps=5_000, head_sentences=None, head_epochs=3),
        tasks=Tasks(train_rows=None, eval_rows=None, epochs=2),
        qa=Qa(train_rows=None, max_length=384, stride=128),
        t5=T5(task_rows=None, epochs=3, max_source=512, steps=3_000,
               warm_tasks=("sentiment", "genre", "qa"), warm_rows=3_000, warm_epochs=3, warm_source=384),
        icl=Icl(test_rows=872, shots=(0, 1, 2, 4, 8, 16, 32), draws=10, orders=24, chat_rows=200),
        strategies=Strategies(train_rows=None, epochs=3),
        chinese=Chinese(train_rows=None, test_rows=None, shots=8),
        sft=Sft(rows_per_task=1_000, epochs=2, heldout_per_task=100)),
}

SOURCES = ("hub", "offline")


class ConfigError(ValueError):
    """An environment variable holds a value the companion does not know."""


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
