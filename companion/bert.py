"""BERT, the encoder-only transformer: its three embeddings, masked-language-model and next-sentence
pretraining, a masked-LM head trained on a frozen pretrained encoder, fill-in-the-blank scoring, and
fine-tuning for token tagging (single sentences and sentence pairs go through
:func:`companion.training.finetune`, extractive question answering through :mod:`companion.qa`; the
next-sentence pairs themselves are built by :mod:`companion.brown`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import (BertConfig, BertForMaskedLM, BertForPreTraining, BertModel,
                          DataCollatorForTokenClassification, DataCollatorWithPadding, PreTrainedModel,
                          PreTrainedTokenizerBase, PreTrainedTokenizerFast, Trainer, default_data_collator, set_seed)

from . import data, metrics, resources, settings
from .training import BERT_PRETRAINING, FINETUNING, TaskRun, Training, finetune_features, train



# --- architecture ---------------------------------------------------------------------------------

def embedding_parts(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, first: str, second: str
                    ) -> dict[str, object]:
    """The input of a BERT encoder for a sentence pair, piece by piece: the tokens, their segment
    ids, the three embedding tables' rows (token, position, segment; each (tokens, width)), their
    sum, and the largest gap between LayerNorm(sum) and the model's own embedding output. Raises
    ``ValueError`` for a model without segment embeddings (DistilBERT drops them)."""
    emb = model.base_model.embeddings
    if getattr(emb, "token_type_embeddings", None) is None:
        raise ValueError(f"{model.config.name_or_path or model.config.model_type} ({type(model).__name__}) has no"
                         f" segment (token type) embeddings; use an encoder of BERT's architecture, e.g. the role"
                         f" 'bert-encoder'.")
    batch = tokenizer(first, second, return_tensors="pt").to(model.device)
    ids, segments = batch["input_ids"], batch["token_type_ids"]
    positions = torch.arange(ids.shape[1], device=ids.device)[None]
    parts = {"token": emb.word_embeddings(ids)[0], "position": emb.position_embeddings(positions)[0],
             "segment": emb.token_type_embeddings(segments)[0]}
    total = parts["token"] + parts["position"] + parts["segment"]
    model.eval()
    with torch.no_grad():
        theirs = emb(input_ids=ids, token_type_ids=segments)[0]
        gap = float((emb.LayerNorm(total) - theirs).abs().max())
    return {"tokens": tokenizer.convert_ids_to_tokens(ids[0]), "segments": segments[0].tolist(),
            **{k: v.detach() for k, v in parts.items()}, "sum": total.detach(), "gap": gap}


BERT_SIZES = {"BERT-base": BertConfig(),  # transformers' defaults are bert-base-uncased's
              "BERT-large": BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                       intermediate_size=4096)}


def size_table(configs: dict[str, BertConfig] = BERT_SIZES) -> list[dict[str, object]]:
    """Layers, width, heads and parameter counts (embeddings, encoder layers, pooler, total) of a
    ``BertModel`` built from each config, on the meta device (shapes only, no memory)."""
    rows = []
    for name, config in configs.items():
        with torch.device("meta"):
            model = BertModel(config)
        count = {part: sum(p.numel() for p in getattr(model, part).parameters())
                 for part in ("embeddings", "encoder", "pooler")}
        rows.append({"model": name, "layers": config.num_hidden_layers, "width": config.hidden_size,
                     "heads": config.num_attention_heads, **count, "total": sum(count.values())})
    return rows


# --- masked language model ------------------------------------------------------------------------

def mask_tokens(input_ids: torch.Tensor, special_tokens_mask: torch.Tensor, mask_token_id: int, vocab_size: int,
                probability: float = 0.15, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: select each non-special token with ``probability``; of the selected, 80 % become
    ``[MASK]``, 10 % a random token, 10 % stay as they are. Returns the new inputs and the labels
    (the original id where selected, -100 elsewhere, so the loss reads only selected positions).
    The random draws come in the order ``DataCollatorForLanguageModeling`` makes them."""
    if not 0 < probability < 1:
        raise ValueError(f"the masking probability must be between 0 and 1, got {probability}")
    inputs, labels = input_ids.clone(), input_ids.clone()
    chance = torch.full(labels.shape, probability).masked_fill_(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(chance, generator=generator).bool()
    labels[~selected] = -100
    masked = torch.bernoulli(torch.full(labels.shape, 0.8), generator=generator).bool() & selected
    inputs[masked] = mask_token_id
    # half of the remaining 20 %: a random token
    randomized = torch.bernoulli(torch.full(labels.shape, 0.5), generator=generator).bool() & selected & ~masked
    random_ids = torch.randint(vocab_size, labels.shape, dtype=torch.long, generator=generator)
    inputs[randomized] = random_ids[randomized]
    return inputs, labels


def masking_shares(original: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor, mask_token_id: int,
                   special_tokens_mask: torch.Tensor) -> dict[str, float]:
    """What masking did: the share of non-special tokens selected, and of the selected the shares
    now ``[MASK]``, another token, or unchanged (a random draw of the same token counts as unchanged)."""
    selected = labels != -100
    n = int(selected.sum())
    if n == 0:
        raise ValueError("no token was selected")
    return {"selected": n / int((~special_tokens_mask.bool()).sum()),
            "mask": int((inputs[selected] == mask_token_id).sum()) / n,
            "random": int(((inputs != original) & (inputs != mask_token_id))[selected].sum()) / n,
            "unchanged": int((inputs[selected] == original[selected]).sum()) / n}


# --- pretraining a small BERT ---------------------------------------------------------------------

BROWN_VOCAB = 8_192  # WordPiece vocabulary of the small BERT, retrained on Brown


def brown_tokenizer() -> PreTrainedTokenizerBase:
    """The encoder's uncased WordPiece tokenizer retrained on the Brown training documents: the same
    normalizer, pre-tokenizer, special tokens and ``[CLS] A [SEP] B [SEP]`` template, ``BROWN_VOCAB``
    tokens instead of 30,522 (the small BERT's masked-LM head scores every token of the vocabulary at
    every position, so its cost shrinks with it). A few seconds; cached (two trainings can differ in a few
    equally frequent pieces: see :func:`companion.data.tokenizer_retrained_on_brown`)."""
    base = resources.tokenizer("bert-encoder")
    path = data.tokenizer_retrained_on_brown(base, BROWN_VOCAB, "bert-brown-wordpiece",
                                             "the encoder's WordPiece vocabulary")
    return PreTrainedTokenizerFast(tokenizer_file=str(path), unk_token=base.unk_token, sep_token=base.sep_token,
                                   pad_token=base.pad_token, cls_token=base.cls_token, mask_token=base.mask_token,
                                   model_input_names=["input_ids", "token_type_ids", "attention_mask"])


def small_bert(tokenizer: PreTrainedTokenizerBase, profile: settings.Profile | None = None) -> BertForPreTraining:
    """A BERT with both pretraining heads and random (seeded) weights, sized by the profile:
    ``small.layers`` layers of width ``small.width`` (64 per head), ``bert.length`` positions."""
    profile = profile or settings.profile()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=profile.small.width,
                        num_hidden_layers=profile.small.layers, num_attention_heads=max(1, profile.small.width // 64),
                        intermediate_size=4 * profile.small.width, max_position_embeddings=profile.bert.length,
                        pad_token_id=tokenizer.pad_token_id)
    set_seed(settings.SEED)
    return BertForPreTraining(config)


def pair_features(pairs: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int) -> DatasetDict:
    """``[CLS] A [SEP] B [SEP]`` (each side truncated to fit), segment ids, which tokens are special,
    and ``next_sentence_label``."""
    def encode(batch: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(batch["text"], batch["text_pair"], truncation="longest_first", max_length=max_length,
                        return_special_tokens_mask=True)
        enc["next_sentence_label"] = batch["label"]
        return enc

    return pairs.map(encode, batched=True, remove_columns=pairs["train"].column_names, desc="tokenizing pairs")


@dataclass
class PretrainingCollator:
    """Pads a batch of :func:`pair_features` rows and masks it with :func:`mask_tokens`."""

    tokenizer: PreTrainedTokenizerBase
    probability: float = 0.15
    generator: torch.Generator | None = None

    def __call__(self, rows: list[dict[str, list]]) -> dict[str, torch.Tensor]:
        batch = DataCollatorWithPadding(self.tokenizer)(rows)
        special = batch.pop("special_tokens_mask") | (batch["attention_mask"] == 0)
        batch["input_ids"], batch["labels"] = mask_tokens(
            batch["input_ids"], special, self.tokenizer.mask_token_id, len(self.tokenizer), self.probability,
            self.generator)
        return dict(batch)


def pretraining_losses(output, labels: torch.Tensor, next_sentence_label: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two cross-entropies ``BertForPreTraining`` adds up: masked tokens, and next sentence."""
    mlm = torch.nn.functional.cross_entropy(output.prediction_logits.flatten(0, 1).float(), labels.flatten(),
                                            ignore_index=-100)
    nsp = torch.nn.functional.cross_entropy(output.seq_relationship_logits.float(), next_sentence_label)
    return mlm, nsp


class _TwoLossTrainer(Trainer):
    """A Trainer that keeps the masked-LM and next-sentence losses of every training step apart."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps: list[tuple[float, float]] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels, nsp_labels = inputs.pop("labels"), inputs.pop("next_sentence_label")
        output = model(**inputs)
        mlm, nsp = pretraining_losses(output, labels, nsp_labels)
        if model.training:
            self.steps.append((float(mlm.detach()), float(nsp.detach())))
        loss = mlm + nsp
        return (loss, output) if return_outputs else loss


@dataclass
class BertPretraining(Training):
    """A finished MLM + NSP run: the :class:`~companion.training.Training`, the two losses of every
    step, and the held-out scores before and after."""

    mlm_losses: list[float]
    nsp_losses: list[float]
    before: dict[str, float]
    after: dict[str, float]


def held_out_scores(model: PreTrainedModel, features: Dataset, tokenizer: PreTrainedTokenizerBase,
                    batch_size: int = 64) -> dict[str, float]:
    """Masked-LM loss and accuracy on the selected tokens, next-sentence loss and accuracy, on
    ``features`` masked with a fixed seed (the same masks at every call)."""
    collate = PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(settings.SEED))
    model.eval()
    mlm_loss = nsp_loss = hits = picked = nsp_hits = 0.0
    for start in range(0, len(features), batch_size):
        batch = collate([features[i] for i in range(start, min(start + batch_size, len(features)))])
        batch = {k: v.to(model.device) for k, v in batch.items()}
        labels, nsp_labels = batch.pop("labels"), batch.pop("next_sentence_label")
        with torch.no_grad():
            out = model(**batch)
        mlm, nsp = pretraining_losses(out, labels, nsp_labels)
        chosen = labels != -100
        mlm_loss += float(mlm) * int(chosen.sum())
        nsp_loss += float(nsp) * len(nsp_labels)
        hits += int((out.prediction_logits.argmax(-1)[chosen] == labels[chosen]).sum())
        picked += int(chosen.sum())
        nsp_hits += int((out.seq_relationship_logits.argmax(-1) == nsp_labels).sum())
    return {"mlm_loss": mlm_loss / picked, "mlm_accuracy": hits / picked,
            "nsp_loss": nsp_loss / len(features), "nsp_accuracy": nsp_hits / len(features)}


def pretrain(model: BertForPreTraining, tokenizer: PreTrainedTokenizerBase, features: DatasetDict, *, steps: int,
             lr: float = 1e-3, name: str = "bert-pretraining", eval_rows: int = 512,
             profile: settings.Profile | None = None) -> BertPretraining:
    """Train both objectives for ``steps`` updates of ``batch_size`` pairs (AdamW, warmup then
    linear decay); score ``eval_rows`` validation pairs before and after."""
    profile = profile or settings.profile()
    held_out = features["validation"].shuffle(seed=settings.SEED).select(
        range(min(eval_rows, len(features["validation"]))))
    before = held_out_scores(model, held_out, tokenizer)
    collate = PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(settings.SEED))
    done = train(model, features["train"], name=name, lr=lr, schedule=BERT_PRETRAINING, batch_size=profile.batch_size,
                 collator=collate, steps=steps, trainer_class=_TwoLossTrainer, remove_unused_columns=False)
    after = held_out_scores(model, held_out, tokenizer)
    mlm, nsp = (list(x) for x in zip(*done.trainer.steps))
    return BertPretraining(done.trainer, done.history, done.train_seconds, done.train_examples, mlm, nsp,
                           before, after)


def mlm_logits(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The masked-LM head's logits (batch x positions x vocabulary) for a tokenized batch, from a
    ``BertForPreTraining`` (``prediction_logits``) or an ``AutoModelForMaskedLM`` (``logits``); evaluation
    mode, no gradients."""
    model.eval()
    with torch.inference_mode():
        out = model(**batch)
    logits = getattr(out, "prediction_logits", None)
    return out.logits if logits is None else logits


def fill_mask(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, text: str, k: int = 5
              ) -> list[list[tuple[str, float]]]:
    """For each ``[MASK]`` in ``text``, the ``k`` most probable tokens and their probabilities, from
    a masked-LM head (``BertForPreTraining`` or ``AutoModelForMaskedLM``)."""
    batch = tokenizer(text, return_tensors="pt").to(model.device)
    where = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten()
    if len(where) == 0:
        raise ValueError(f"the text has no {tokenizer.mask_token} token: {text!r}")
    probs = torch.softmax(mlm_logits(model, batch)[0, where].float(), dim=-1)
    top = probs.topk(k)
    return [[(tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(ps, ids)]
            for ps, ids in zip(top.values, top.indices)]


# --- a masked-LM head on a frozen pretrained encoder ------------------------------------------------

MLM_HEAD = ("cls.predictions.transform.", "cls.predictions.bias")  # what trains; the decoder is tied to the embeddings


def train_only_mlm_head(model: BertForMaskedLM) -> list[str]:
    """Freeze every weight of ``model`` but its masked-LM head's transform (dense, GELU, LayerNorm) and
    output bias; the head's decoder is the word-embedding matrix itself (tied), so it stays frozen with
    the encoder. Returns the names of the weights left to train."""
    if model.cls.predictions.decoder.weight is not model.bert.embeddings.word_embeddings.weight:
        raise ValueError("the masked-LM decoder is not tied to the word embeddings (tie_word_embeddings=False)")
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith(MLM_HEAD)
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def masked_vectors(model: BertForMaskedLM, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int,
                   batch_size: int = 64) -> Dataset:
    """Mask ``texts`` with BERT's rule (:class:`PretrainingCollator`, seeded), run ``model``'s frozen
    encoder over them once, and keep one row per selected position: the encoder's last hidden state there
    (``hidden``) and the original token (``labels``). A frozen encoder gives the same vectors at every
    epoch, so the head can train on these rows alone. The model is moved to the GPU when there is one,
    where Trainer will put the head (whose decoder is the encoder's embedding matrix)."""
    if not texts:
        raise ValueError("no texts to mask")
    generator = torch.Generator().manual_seed(settings.SEED)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()  # where Trainer will put the head
    hidden, labels = [], []
    collate = PretrainingCollator(tokenizer, generator=generator)
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length,
                            return_special_tokens_mask=True)
        batch = collate([{k: encoded[k][i] for k in encoded} for i in range(len(encoded["input_ids"]))])
        chosen = batch.pop("labels")
        with torch.inference_mode():
            states = model.bert(**{k: v.to(model.device) for k, v in batch.items()}).last_hidden_state.float().cpu()
        picked = chosen != -100
        hidden.append(states[picked])
        labels.append(chosen[picked])
    return Dataset.from_dict({"hidden": torch.cat(hidden).numpy(), "labels": torch.cat(labels).numpy()})


class HeadOnVectors(torch.nn.Module):
    """A masked-LM head (``BertOnlyMLMHead``) applied to encoder vectors computed beforehand: logits over
    the vocabulary and, given ``labels``, their cross-entropy."""

    def __init__(self, head: torch.nn.Module):
        super().__init__()
        self.head = head

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        logits = self.head(hidden)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits.float(), labels)
        return {"loss": loss, "logits": logits}


def train_mlm_head(model: BertForMaskedLM, vectors: Dataset, *, epochs: float, lr: float = 1e-3,
                   batch_size: int = 256) -> Training:
    """Train the masked-LM head of ``model`` (prepared by :func:`train_only_mlm_head`) on
    :func:`masked_vectors` rows through the book's training spine; the encoder never runs. (The head's
    decoder is the encoder's embedding matrix: :func:`masked_vectors` has already put the whole model
    where Trainer puts the head.)"""
    return train(HeadOnVectors(model.cls), vectors.with_format("torch"), name="mlm-head", lr=lr, schedule=FINETUNING,
                 batch_size=batch_size, collator=default_data_collator, epochs=epochs)


def blanks(sentences: list[str], tokenizers: list[PreTrainedTokenizerBase], max_length: int,
           seed: int = settings.SEED) -> list[tuple[str, str]]:
    """One blank per sentence for a fill-in-the-blank test that several models can take: a word of
    lowercase ASCII letters that every tokenizer keeps as one token of its vocabulary (seeded choice),
    replaced by ``[MASK]``. Returns (masked sentence, word); sentences without such a word, or longer
    than ``max_length`` tokens for a tokenizer (the models' positions), are left out."""
    vocabularies = [tok.get_vocab() for tok in tokenizers]
    if any(tok.mask_token != "[MASK]" for tok in tokenizers):
        raise ValueError("every tokenizer must use [MASK] as its mask token")
    rng = np.random.default_rng(seed)
    made = []
    for sentence in sentences:
        if any(len(tok(sentence)["input_ids"]) > max_length for tok in tokenizers):
            continue
        words = sentence.split(" ")
        fit = [i for i, w in enumerate(words)
               if w.isascii() and w.isalpha() and w.islower() and all(w in v for v in vocabularies)]
        if fit:
            i = int(rng.choice(fit))
            made.append((" ".join([*words[:i], "[MASK]", *words[i + 1:]]), words[i]))
    return made


def fill_accuracy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, items: list[tuple[str, str]],
                  k: int = 5, batch_size: int = 64) -> dict[str, float]:
    """Top-1 and top-``k`` accuracy of a masked-LM model on :func:`blanks`: the share of blanks whose
    word is the model's first guess, or among its ``k`` first."""
    if not items:
        raise ValueError("no blanks to fill")
    hits1 = hitsk = 0
    for start in range(0, len(items), batch_size):
        texts, words = zip(*items[start:start + batch_size])
        batch = tokenizer(list(texts), padding=True, return_tensors="pt").to(model.device)
        logits = mlm_logits(model, batch)
        rows, cols = (batch["input_ids"] == tokenizer.mask_token_id).nonzero(as_tuple=True)
        if rows.tolist() != list(range(len(words))):
            raise ValueError("each blank must hold exactly one [MASK] token (see blanks)")
        top = logits[rows, cols].topk(k).indices.cpu()
        truth = torch.tensor(tokenizer.convert_tokens_to_ids(list(words)))
        hits1 += int((top[:, 0] == truth).sum())
        hitsk += int((top == truth[:, None]).any(-1).sum())
    return {"top1": hits1 / len(items), f"top{k}": hitsk / len(items), "blanks": len(items)}


def frequent_word_accuracy(train_items: list[tuple[str, str]], test_items: list[tuple[str, str]], k: int = 5
                           ) -> dict[str, object]:
    """The baseline that never reads the sentence: guess the ``k`` words most often blanked in
    ``train_items``; top-1 and top-``k`` accuracy on ``test_items``."""
    if not train_items or not test_items:
        raise ValueError("the baseline needs training blanks to count and test blanks to score")
    words, counts = np.unique([w for _, w in train_items], return_counts=True)
    guesses = [str(w) for w in words[np.argsort(-counts, kind="stable")][:k]]
    test = [w for _, w in test_items]
    return {"top1": sum(w == guesses[0] for w in test) / len(test),
            f"top{k}": sum(w in guesses for w in test) / len(test), "blanks": len(test), "guesses": guesses}


# --- fine-tuning: what is trained -----------------------------------------------------------------

def freeze_pretrained(model: PreTrainedModel, new_weights: list[str]) -> tuple[int, int]:
    """Freeze every pretrained parameter, leaving only the newly initialised ones (the head) to train;
    returns (trainable, total) parameter counts."""
    new = set(new_weights)
    if not new & {n for n, _ in model.named_parameters()}:
        raise ValueError("none of new_weights is a parameter of the model: nothing would train")
    for name, param in model.named_parameters():
        param.requires_grad = name in new
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()))


# --- token classification -------------------------------------------------------------------------

def align_labels(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """One label per word piece: the word's label on its first piece, -100 (not scored) on its other
    pieces and on special tokens."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(-100 if word is None or word == previous else word_labels[word])
        previous = word
    return labels


def token_features(ds: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int) -> DatasetDict:
    """Tokenize pre-split words (``tokens``) into pieces and align ``tags`` to ``labels``."""
    def encode(batch: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        enc["labels"] = [align_labels(enc.word_ids(i), tags) for i, tags in enumerate(batch["tags"])]
        return enc

    return ds.map(encode, batched=True, remove_columns=ds["train"].column_names, desc="aligning tags")


def token_scores(logits: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, object]:
    """Word-level accuracy (first pieces only), macro F1 over the tags present, per-tag accuracy."""
    keep = labels != -100
    pred, gold = logits.argmax(-1)[keep], labels[keep]
    if gold.size == 0:
        raise ValueError("no scored token")
    accuracy = metrics.load("accuracy").compute(predictions=pred, references=gold)["accuracy"]
    present = sorted(set(gold.tolist()))
    f1 = metrics.load("f1").compute(predictions=pred, references=gold, average="macro", labels=present)["f1"]
    per_tag = {names[t]: float((pred[gold == t] == t).mean()) for t in present}
    return {"accuracy": accuracy, "macro_f1": f1, "per_tag_accuracy": per_tag, "words": int(gold.size)}


def finetune_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: DatasetDict, *, lr: float,
                    name: str = "token-tags", epochs: float | None = None,
                    profile: settings.Profile | None = None) -> TaskRun:
    """Fine-tune a token classifier on ``tokens`` / ``tags`` splits (pieces padded per batch)."""
    profile = profile or settings.profile()
    data.check(ds, ("tokens", "tags"))
    features = token_features(ds, tokenizer, profile.max_length)
    return finetune_features(model, tokenizer, features, DataCollatorForTokenClassification(tokenizer), lr=lr,
                             name=name, epochs=epochs or profile.finetune.epochs, profile=profile)


def evaluate_tokens(run: TaskRun, split: str = "test") -> dict[str, object]:
    """:func:`token_scores` of a token run on a split."""
    out = run.trainer.predict(run.features[split])
    return token_scores(out.predictions, out.label_ids, [run.model.config.id2label[i]
                                                         for i in range(run.model.config.num_labels)])
