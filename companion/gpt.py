"""GPT, the decoder-only transformer: causal attention, language-model pretraining, perplexity,
decoding strategies, and classification from the last token ([Start] text [Extract]).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from itertools import chain

import torch
from datasets import DatasetDict
from transformers import (GPT2Config, GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerBase,
                          PreTrainedTokenizerFast, default_data_collator, set_seed)

from . import data, resources, settings
from .training import GPT_PRETRAINING, Encode, Training, cadence, train

START, EXTRACT = "<|start|>", "<|extract|>"
VOCAB_SIZE = 8_192  # of the small GPT-2's byte-level BPE vocabulary, retrained on the Brown corpus


# --- architecture ---------------------------------------------------------------------------------

def causal_mask(n: int) -> torch.Tensor:
    """``n x n`` booleans, True where query position i may attend to key position j (j <= i)."""
    if n < 1:
        raise ValueError(f"a mask needs at least one position, got {n}")
    return torch.ones(n, n, dtype=torch.bool).tril()


# (part, substrings of a parameter name) for GPT-2 and Llama-style decoders; first match wins.
PARTS = (("position embeddings", (".wpe.",)), ("transformer blocks", (".h.", ".layers.")),
         ("LM head (untied)", ("lm_head",)), ("classification head", ("score",)), ("final norm", ("ln_f", "norm")))


def parameter_counts(model: PreTrainedModel) -> dict[str, int]:
    """Parameters by part (token embeddings, learned position embeddings, transformer blocks, final
    norm, an untied LM head or a classification head) and the total; a tied weight counts once."""
    groups: Counter[str] = Counter()
    embeddings = model.get_input_embeddings().weight
    groups["token embeddings"] = embeddings.numel()
    for name, param in model.named_parameters():  # tied weights appear once, under their first name
        if param is embeddings:
            continue
        part = next((part for part, keys in PARTS if any(k in name for k in keys)), None)
        if part is None:
            raise ValueError(f"parameter {name} belongs to no known part of a decoder")
        groups[part] += param.numel()
    return {**groups, "total": sum(groups.values())}


def next_token_table(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str,
                     k: int = 10) -> list[dict[str, object]]:
    """The ``k`` most probable next tokens after ``prompt`` with their probabilities."""
    batch = tokenizer(prompt, return_tensors="pt").to(model.device)
    model.eval()
    with torch.no_grad():
        logits = model(**batch).logits[0, -1].float()
    probs = torch.softmax(logits, dim=-1)
    top = probs.topk(k)
    return [{"token": tokenizer.decode([int(i)]), "id": int(i), "probability": float(p)}
            for p, i in zip(top.values, top.indices)]


# --- pretraining from scratch ---------------------------------------------------------------------

def brown_tokenizer() -> PreTrainedTokenizerBase:
    """GPT-2's tokenizer with its merges retrained on the Brown training documents: the same byte-level
    BPE algorithm, pre-tokenization and ``<|endoftext|>``, ``VOCAB_SIZE`` tokens instead of 50,257
    (``train_new_from_iterator``: a few seconds, the same vocabulary on every run), cached."""
    base = resources.tokenizer("gpt2")
    path = data.tokenizer_retrained_on_brown(base, VOCAB_SIZE, "gpt2-brown-bpe", "GPT-2's BPE merges")
    return PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token=base.bos_token, eos_token=base.eos_token,
                                   unk_token=base.unk_token)


def output_layer_share(vocabulary: int, width: int, layers: int, context: int) -> float:
    """The share of a decoder's multiply-adds per token spent in its output layer (``vocabulary x
    width``), against the blocks' projections and MLP (``12 width^2`` each) and attention over the
    context (``2 context width`` each)."""
    output = vocabulary * width
    return output / (output + layers * (12 * width * width + 2 * context * width))


def small_gpt2(tokenizer: PreTrainedTokenizerBase, profile: settings.Profile | None = None) -> GPT2LMHeadModel:
    """A GPT-2 with random (seeded) weights, sized by the profile: ``small.layers`` blocks of
    width ``small.width`` (64 per head), ``small.context`` learned positions, the tokenizer's vocabulary."""
    profile = profile or settings.profile()
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=profile.small.context, n_embd=profile.small.width,
                        n_layer=profile.small.layers, n_head=max(1, profile.small.width // 64),
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    set_seed(settings.SEED)
    model = GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"  # the class name does not say it, and transformers warns when guessing
    return model


def lm_blocks(ds: DatasetDict, tokenizer: PreTrainedTokenizerBase, context: int) -> DatasetDict:
    """Each split's texts tokenized, each followed by the end-of-text token, concatenated and cut
    into blocks of ``context`` tokens (the remainder is dropped): the causal-LM training format.
    ``labels`` are a copy of ``input_ids``; the model shifts them by one itself. (Not
    ``DataCollatorForLanguageModeling(mlm=False)``: with GPT-2's pad token set to end-of-text it
    would blank every end-of-text target, and full blocks need no padding anyway.)"""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no end-of-text token to separate documents")

    def group(batch: dict[str, list]) -> dict[str, list]:
        ids = list(chain.from_iterable(row + [tokenizer.eos_token_id]
                                       for row in tokenizer(list(batch["text"]))["input_ids"]))
        usable = len(ids) // context * context
        rows = [ids[i:i + context] for i in range(0, usable, context)]
        return {"input_ids": rows, "labels": rows}

    blocks = ds.map(group, batched=True, batch_size=1_000, remove_columns=ds["train"].column_names,
                    desc="tokenizing into blocks")
    for name, part in blocks.items():
        if len(part) == 0:
            raise ValueError(f"the {name!r} split has fewer than {context} tokens: no block to train on")
    return blocks


@dataclass
class Pretraining(Training):
    """A finished causal-LM pretraining run: the :class:`~companion.training.Training` (its history
    adds the held-out perplexity) and the tokens it trained on."""

    tokens_seen: int


def pretrain(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, blocks: DatasetDict, *, steps: int,
             lr: float = 2e-3, name: str = "gpt-pretraining", evals: int = 6,
             profile: settings.Profile | None = None) -> Pretraining:
    """Train ``model`` to predict the next token for ``steps`` updates of ``batch_size`` blocks
    (AdamW, warmup then cosine decay), scoring ``profile.small.eval_blocks`` validation blocks (a fixed
    random subset) before the first step and ``evals`` times along the way.
    Labels are the inputs; the model shifts them by one position itself."""
    profile = profile or settings.profile()
    held_out = blocks["validation"]
    if profile.small.eval_blocks is not None and len(held_out) > profile.small.eval_blocks:
        held_out = held_out.shuffle(seed=settings.SEED).select(range(profile.small.eval_blocks))
    done = train(model, blocks["train"], name=name, lr=lr, schedule=GPT_PRETRAINING, batch_size=profile.batch_size,
                 collator=default_data_collator, steps=steps, eval_data=held_out, every=cadence(steps, evals))
    for row in done.history:
        row["eval_perplexity"] = math.exp(row["eval_loss"])
    context = len(blocks["train"][0]["input_ids"])
    return Pretraining(done.trainer, done.history, done.train_seconds, done.train_examples,
                       steps * profile.batch_size * context)


@dataclass(frozen=True)
class Perplexity:
    """How well a causal LM predicts some text."""

    tokens: int
    characters: int
    nll: float  # summed negative log-likelihood, nats

    @property
    def perplexity(self) -> float:
        """exp(mean NLL per token): depends on the tokenizer, so compare it only between models that share one."""
        return math.exp(self.nll / self.tokens)

    @property
    def bits_per_character(self) -> float:
        """Total bits over characters of text: comparable across tokenizers."""
        return self.nll / math.log(2) / self.characters


def perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str],
               context: int | None = None, stride: int | None = None) -> Perplexity:
    """Score ``texts`` with sliding windows of ``context`` tokens (default: the model's maximum, at
    most 1,024) moved by ``stride`` (default: half a window); each token is predicted once, with
    as much left context as the window allows. The first token of each text is not predicted."""
    if not any(t.strip() for t in texts):
        raise ValueError("no text to score")
    context = context or min(getattr(model.config, "n_positions", None)
                             or getattr(model.config, "max_position_embeddings", 1024), 1024)
    stride = stride or max(1, context // 2)
    model.eval()
    nll, tokens, characters = 0.0, 0, 0
    for text in texts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"][0].to(model.device)
        characters += len(text)
        scored = 1  # position 0 has no left context
        for begin in range(0, max(1, len(ids) - 1), stride):
            end = min(begin + context, len(ids))
            window = ids[begin:end].unsqueeze(0)
            with torch.no_grad():
                logits = model(input_ids=window).logits[0, :-1].float()
            logp = torch.log_softmax(logits, dim=-1).gather(1, window[0, 1:, None]).squeeze(1)
            new = logp[scored - begin - 1:]  # predictions of tokens not scored by an earlier window
            nll -= float(new.sum())
            tokens += len(new)
            scored = end
            if end == len(ids):
                break
    if tokens == 0:
        raise ValueError("every text is a single token: nothing to predict")
    return Perplexity(tokens, characters, nll)


# --- decoding -------------------------------------------------------------------------------------

STRATEGIES: dict[str, dict[str, object]] = {
    "greedy": {"do_sample": False},
    "beam search (4)": {"do_sample": False, "num_beams": 4},
    "sampling, temperature 1.0": {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0},
    "sampling, temperature 0.7": {"do_sample": True, "temperature": 0.7, "top_k": 0, "top_p": 1.0},
    "top-k 40": {"do_sample": True, "top_k": 40, "top_p": 1.0},
    "top-p 0.9": {"do_sample": True, "top_p": 0.9, "top_k": 0},
}


def generate_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str, strategy: str,
                 samples: int = 1, max_new_tokens: int = 40) -> list[list[int]]:
    """``samples`` continuations of ``prompt`` (new token ids only) with a named strategy of
    :data:`STRATEGIES`; seeded, so a rerun gives the same text."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    batch = tokenizer(prompt, return_tensors="pt").to(model.device)
    options = STRATEGIES[strategy]
    sampled = bool(options["do_sample"])
    set_seed(settings.SEED)
    model.eval()
    # min_new_tokens = max_new_tokens: every continuation has the same length, so the measures compare
    out = model.generate(**batch, **options, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                         num_return_sequences=samples if sampled else 1,
                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    new = [row[batch["input_ids"].shape[1]:].tolist() for row in out]
    return new if sampled else new * samples  # a deterministic strategy gives the same text every time


def ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    """The n-grams of a sequence, in order."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(sequences: list[list[int]], n: int) -> float:
    """Distinct n-grams over all n-grams, pooled across sequences (1.0: nothing repeats)."""
    grams = [g for seq in sequences for g in ngrams(seq, n)]
    if not grams:
        raise ValueError(f"no sequence is long enough to hold a {n}-gram")
    return len(set(grams)) / len(grams)


def repetition_rate(tokens: list[int], n: int = 3) -> float:
    """Share of a sequence's n-grams that already occurred earlier in it (0.0: no loop)."""
    grams = ngrams(tokens, n)
    if not grams:
        raise ValueError(f"a sequence of {len(tokens)} tokens holds no {n}-gram")
    seen: set[tuple[int, ...]] = set()
    repeats = 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams)


def compare_decoding(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str,
                     strategies: list[str] | None = None, samples: int = 4,
                     max_new_tokens: int = 40) -> list[dict[str, object]]:
    """One row per strategy: its first continuation, distinct-1/-2 over ``samples`` continuations
    (diversity), the mean 3-gram repetition rate (loops) and the seconds it took."""
    rows = []
    for strategy in strategies or list(STRATEGIES):
        start = time.perf_counter()
        outs = generate_ids(model, tokenizer, prompt, strategy, samples, max_new_tokens)
        rows.append({"strategy": strategy, "text": tokenizer.decode(outs[0], skip_special_tokens=True),
                     "distinct_1": distinct_n(outs, 1), "distinct_2": distinct_n(outs, 2),
                     "repetition_3": sum(repetition_rate(o) for o in outs) / len(outs),
                     "seconds": time.perf_counter() - start})
    return rows


# --- classification from the last token -----------------------------------------------------------

def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Per row, the position of the last real (mask 1) token: the end of the text with right padding,
    the last column with left padding."""
    if (attention_mask.sum(-1) == 0).any():
        raise ValueError("a row has no real token")
    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    return (positions * attention_mask).argmax(-1)


def pool_last(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The hidden state (batch, seq, dim) -> (batch, dim) at each row's last real token."""
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]


def decoder_classifier(labels: list[str], name: str = "decoder") -> resources.Classifier:
    """A pretrained decoder with a new linear head on the last token, and a tokenizer that knows
    the ``<|start|>`` / ``<|extract|>`` delimiters (their embeddings are new, hence trained)."""
    clf = resources.classifier(name, labels)
    tok, model = clf.tokenizer, clf.model
    tok.add_special_tokens({"additional_special_tokens": [START, EXTRACT]})
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # GPT-2 has none; the attention mask tells padding apart
    set_seed(settings.SEED)
    with resources.reporting_new_weights_ourselves():
        model.resize_token_embeddings(len(tok), mean_resizing=True)
    model.config.pad_token_id = tok.pad_token_id
    return clf._replace(new_weights=[*clf.new_weights, "embeddings of <|start|> and <|extract|>"])


def gpt_encoder(tokenizer: PreTrainedTokenizerBase, max_length: int) -> Encode:
    """Text -> ``<|start|>`` + text (truncated so the whole fits in ``max_length``) + ``<|extract|>``:
    the delimiters survive truncation, so the head always reads the extract token."""
    start, extract = tokenizer.convert_tokens_to_ids([START, EXTRACT])
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in (start, extract):
        raise ValueError("the tokenizer lacks <|start|> / <|extract|>: build it with decoder_classifier")

    def encode(texts: list[str], pairs: list[str] | None = None) -> dict[str, list]:
        if pairs is not None:
            raise ValueError("the [Start] text [Extract] format holds one text, not a pair")
        body = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_length - 2)["input_ids"]
        ids = [[start, *row, extract] for row in body]
        return {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}

    return encode
