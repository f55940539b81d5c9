"""Instruction tuning: a small instruction set built from the book's own data, written as JSONL (and
described the way LLaMA-Factory reads it), taught to a chat model with TRL's ``SFTTrainer`` and a LoRA
adapter, and scored before and after on held-out prompts.

Each example is an Alpaca-style record (``instruction``, ``input``, ``output``) plus its ``task``. For
training it becomes a conversational prompt-completion pair: the user turn (instruction and input) is
the prompt, the assistant turn (the answer) the completion; ``SFTTrainer`` then masks the prompt's
tokens out of the loss (their labels become -100), so the model learns to answer, not to ask.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets
from peft import TaskType, get_peft_model
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer

from . import peft_tuning, settings, training

TASK_COLUMNS = ("task", "instruction", "input", "output")


@dataclass(frozen=True)
class Task:
    """One kind of instruction: what the user is asked, and which answers count as well-formed
    (``choices``: one of these words; ``None``: a short span copied from the input)."""

    instruction: str
    choices: tuple[str, ...] | None = None


def _genres(names: list[str]) -> tuple[str, ...]:
    return tuple(name.replace("_", " ") for name in names)


def sentiment_task() -> Task:
    return Task("Is the sentiment of this movie review positive or negative? Answer with one word.",
                ("negative", "positive"))


def genre_task(genres: tuple[str, ...]) -> Task:
    return Task("Which genre of the Brown corpus is this passage from? Answer with one of: "
                + ", ".join(genres) + ".", genres)


QA_TASK = Task("Answer the question with the name or number from the context that fills its blank"
               " ('what'). Copy it exactly.")
MAX_ANSWER_WORDS = 5  # a well-formed QA answer: a span of the context of at most this many words


def sentiment_examples(ds: Dataset) -> Dataset:
    """Movie sentences (``text``, ``label``) -> instruction records whose answer is the label's name."""
    names = ds.features["label"].names
    task = sentiment_task()
    return Dataset.from_dict({"task": ["sentiment"] * len(ds), "instruction": [task.instruction] * len(ds),
                              "input": ds["text"], "output": [names[i] for i in ds["label"]]})


def genre_examples(ds: Dataset, words: int = 60, seed: int = settings.SEED) -> Dataset:
    """Brown documents (``text``, ``label``) -> one record per document: a passage of ``words`` words
    from a seeded random place in it, answered by the document's genre."""
    genres = _genres(ds.features["label"].names)
    task = genre_task(genres)
    rng = np.random.default_rng(seed)
    inputs = []
    for text in ds["text"]:
        tokens = text.split()
        start = int(rng.integers(0, max(1, len(tokens) - words)))
        inputs.append(" ".join(tokens[start:start + words]))
    return Dataset.from_dict({"task": ["genre"] * len(ds), "instruction": [task.instruction] * len(ds),
                              "input": inputs, "output": [genres[i] for i in ds["label"]]})


def qa_examples(ds: Dataset, context_words: int = 50) -> Dataset:
    """Cloze questions in SQuAD format -> records whose input is the context (cut to
    ``context_words`` words around the answer) and the question, answered by the gold answer."""
    inputs, outputs = [], []
    for context, question, answers in zip(ds["context"], ds["question"], ds["answers"]):
        answer, start = answers["text"][0], answers["answer_start"][0]
        before, after = context[:start].split(), context[start:].split()
        keep = before[-(context_words // 2):] + after[:context_words - min(len(before), context_words // 2)]
        inputs.append(f"Context: {' '.join(keep)}\nQuestion: {question}")
        outputs.append(answer)
    return Dataset.from_dict({"task": ["qa"] * len(ds), "instruction": [QA_TASK.instruction] * len(ds),
                              "input": inputs, "output": outputs})


def tasks_of(examples: Dataset) -> dict[str, Task]:
    """The :class:`Task` of each task name found in ``examples`` (genres read from the genre task's
    instruction)."""
    found: dict[str, Task] = {}
    for name, instruction in zip(examples["task"], examples["instruction"]):
        if name in found:
            continue
        if name == "sentiment":
            found[name] = sentiment_task()
        elif name == "genre":
            found[name] = genre_task(tuple(instruction.split("one of: ", 1)[1].rstrip(".").split(", ")))
        elif name == "qa":
            found[name] = QA_TASK
        else:
            raise ValueError(f"unknown task {name!r} (known: sentiment, genre, qa)")
    return found


def mixture(parts: list[Dataset], rows_per_task: int | None, seed: int = settings.SEED) -> Dataset:
    """Up to ``rows_per_task`` seeded random records of each task (``None``: all), shuffled together."""
    picked = []
    for part in parts:
        if len(part) == 0:
            raise ValueError(f"no {part['task'][:1] or 'task'} records to take")
        if rows_per_task is not None and len(part) > rows_per_task:
            part = part.shuffle(seed=seed).select(range(rows_per_task))
        picked.append(part.select_columns(list(TASK_COLUMNS)))
    return concatenate_datasets(picked).shuffle(seed=seed)


def write_jsonl(examples: Dataset, path: Path) -> Path:
    """Write the records as JSON Lines (one Alpaca-style object a line, UTF-8) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in examples.select_columns(list(TASK_COLUMNS)):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: Path) -> Dataset:
    """Read records written by :func:`write_jsonl`; a line without a required field is an error naming it."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = [c for c in TASK_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"{path}:{number}: the record has no {', '.join(missing)}")
        rows.append({c: row[c] for c in TASK_COLUMNS})
    if not rows:
        raise ValueError(f"{path} holds no records")
    return Dataset.from_list(rows)


def llama_factory_dataset_info(name: str, jsonl: Path) -> dict[str, object]:
    """The entry of LLaMA-Factory's ``dataset_info.json`` that reads the JSONL of :func:`write_jsonl` in
    its Alpaca format: ``instruction`` + ``input`` make the prompt, ``output`` the response."""
    return {name: {"file_name": jsonl.name, "formatting": "alpaca",
                   "columns": {"prompt": "instruction", "query": "input", "response": "output"}}}


def llama_factory_config(dataset: str, model: str, output_dir: str) -> str:
    """The lines of a LLaMA-Factory training config (YAML, for ``llamafactory-cli train``) that fine-tune
    ``model`` with a rank-8 LoRA adapter on ``dataset`` (a ``dataset_info.json`` name), answers only in
    the loss (its default for supervised fine-tuning)."""
    return "\n".join([
        f"model_name_or_path: {model}", "stage: sft", "do_train: true", "finetuning_type: lora",
        "lora_rank: 8", "lora_target: q_proj,v_proj", f"dataset: {dataset}", "dataset_dir: data",
        "template: default", "cutoff_len: 256", f"output_dir: {output_dir}", "per_device_train_batch_size: 8",
        "learning_rate: 5.0e-4", "num_train_epochs: 1.0", "lr_scheduler_type: linear", "warmup_ratio: 0.1", ""])


def user_turn(row: dict[str, str]) -> str:
    """What the user says: the instruction, a blank line, the input."""
    return f"{row['instruction']}\n\n{row['input']}"


def prompt_completion(examples: Dataset) -> Dataset:
    """Records -> conversational prompt-completion pairs, the form in which ``SFTTrainer`` computes the
    loss on the completion (the answer) only."""
    return Dataset.from_dict({
        "prompt": [[{"role": "user", "content": user_turn(row)}] for row in examples],
        "completion": [[{"role": "assistant", "content": row["output"]}] for row in examples]})


def trainer_features(trainer: SFTTrainer, rows: int = 1) -> dict[str, torch.Tensor]:
    """The first ``rows`` training rows as ``trainer`` batches them: ``input_ids`` and ``labels`` (-100
    where the loss ignores a token)."""
    return trainer.data_collator([trainer.train_dataset[i] for i in range(rows)])


def sft(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: Dataset, *, lr: float,
        epochs: float, rank: int = 8, batch_size: int = 8, max_length: int = 256,
        name: str = "sft-lora", build_only: bool = False) -> training.Training:
    """Supervised fine-tuning of a chat model on instruction records through the book's training spine,
    with TRL's ``SFTTrainer`` (chat template applied, prompt tokens masked out of the loss) and a rank-
    ``rank`` LoRA adapter on the attention's query and value projections
    (:func:`companion.peft_tuning.lora_config`). ``build_only`` sets the trainer up without training (to
    inspect its batches). Records whose answer would not fit in ``max_length`` tokens are dropped."""
    if len(examples) == 0:
        raise ValueError("no instruction records to train on")
    if tokenizer.chat_template is None:
        raise ValueError("the tokenizer has no chat template: instruction tuning here needs a chat model's")
    adapted = get_peft_model(model, peft_tuning.lora_config(model, rank, TaskType.CAUSAL_LM))
    return training.train(adapted, prompt_completion(examples), name=name, lr=lr, schedule=training.FINETUNING,
                          batch_size=batch_size, collator=None, epochs=epochs, tokenizer=tokenizer,
                          trainer_class=SFTTrainer, arguments_class=SFTConfig, build_only=build_only,
                          max_length=max_length, completion_only_loss=True, activation_checkpointing=False,
                          **training.GROUP_BY_LENGTH)


def answers(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: Dataset, *,
            max_new_tokens: int = 12, batch_size: int = 8) -> list[str]:
    """Greedy answers of a chat model to each record's user turn (chat template, generation prompt),
    decoded without special tokens and stripped."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation continues every row's end
    out = []
    model.eval()
    try:
        for i in tqdm(range(0, len(examples), batch_size), desc="answers"):
            chats = [[{"role": "user", "content": user_turn(row)}]
                     for row in examples.select(range(i, min(i + batch_size, len(examples))))]
            batch = tokenizer.apply_chat_template(chats, add_generation_prompt=True, padding=True,
                                                  return_tensors="pt", return_dict=True).to(model.device)
            with torch.inference_mode():
                ids = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
            out += [t.strip() for t in tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1]:],
                                                               skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
    return out


def normalized(text: str) -> str:
    """Lower case, punctuation and surrounding spaces removed, inner spaces collapsed."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return re.sub(r"\s+", " ", text).strip()


def well_formed(answer: str, task: Task, given: str) -> bool:
    """Whether an answer has the task's form: exactly one of its choices, or (no choices) a span of at
    most :data:`MAX_ANSWER_WORDS` words found in the input ``given``."""
    said = normalized(answer)
    if task.choices is not None:
        return said in {normalized(c) for c in task.choices}
    return 0 < len(said.split()) <= MAX_ANSWER_WORDS and said in normalized(given)


def score(examples: Dataset, said: list[str]) -> dict[str, dict[str, float]]:
    """Per task: ``exact_match`` (normalized answer equals the expected output), ``well_formed`` (share of
    answers in the task's form, :func:`well_formed`) and the number of ``examples``."""
    if len(said) != len(examples):
        raise ValueError(f"{len(said)} answers for {len(examples)} records")
    tasks = tasks_of(examples)
    scores: dict[str, dict[str, float]] = {}
    for name, task in tasks.items():
        rows = [(row, a) for row, a in zip(examples, said) if row["task"] == name]
        scores[name] = {"exact_match": float(np.mean([normalized(a) == normalized(r["output"]) for r, a in rows])),
                        "well_formed": float(np.mean([well_formed(a, task, r["input"]) for r, a in rows])),
                        "examples": len(rows)}
    return scores
