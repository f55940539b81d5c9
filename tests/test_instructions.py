"""Instruction tuning: the records built from the book's data, their JSONL and LLaMA-Factory forms, the
answer-only loss of SFTTrainer through the training spine, and the scoring of answers."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from datasets import ClassLabel, Dataset, Features, Sequence, Value
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from companion import instructions, peft_tuning, resources

GENRES = ["news", "science_fiction", "romance"]


def movie() -> Dataset:
    return Dataset.from_dict({"text": ["a fine film", "dull and long", "lovely"], "label": [1, 0, 1]},
                             features=Features({"text": Value("string"),
                                                "label": ClassLabel(names=["negative", "positive"])}))


def brown() -> Dataset:
    words = " ".join(f"w{i}" for i in range(200))
    return Dataset.from_dict({"text": [words, "short text here", words], "label": [0, 1, 2]},
                             features=Features({"text": Value("string"), "label": ClassLabel(names=GENRES)}))


def cloze() -> Dataset:
    context = "Mr. Smith came home on Tuesday. He had been away. Smith was tired."
    return Dataset.from_dict({"id": ["d-1"], "title": ["d"], "context": [context],
                              "question": ["What came home on Tuesday?"],
                              "answers": [{"text": ["Smith"], "answer_start": [context.index("Smith")]}]},
                             features=Features({"id": Value("string"), "title": Value("string"),
                                                "context": Value("string"), "question": Value("string"),
                                                "answers": Sequence({"text": Value("string"),
                                                                     "answer_start": Value("int32")})}))


def records() -> Dataset:
    return instructions.mixture([instructions.sentiment_examples(movie()), instructions.genre_examples(brown()),
                                 instructions.qa_examples(cloze())], rows_per_task=None)


def test_records_of_each_task_carry_the_alpaca_fields_and_the_expected_answer():
    sentiment = instructions.sentiment_examples(movie())
    assert sentiment["output"] == ["positive", "negative", "positive"] and sentiment["input"][1] == "dull and long"
    genre = instructions.genre_examples(brown(), words=60)
    assert genre["output"] == ["news", "science fiction", "romance"]
    assert [len(x.split()) for x in genre["input"]] == [60, 3, 60]
    assert "science fiction" in genre["instruction"][0]
    qa = instructions.qa_examples(cloze())
    assert qa["output"] == ["Smith"] and qa["input"][0].startswith("Context: ") and "Question: " in qa["input"][0]
    assert set(instructions.TASK_COLUMNS) <= set(records().column_names)


def test_mixture_caps_each_task_and_is_seeded():
    parts = [instructions.sentiment_examples(movie()), instructions.genre_examples(brown())]
    mixed = instructions.mixture(parts, rows_per_task=2)
    assert sorted(mixed["task"]) == ["genre", "genre", "sentiment", "sentiment"]
    assert mixed["input"] == instructions.mixture(parts, rows_per_task=2)["input"]
    with pytest.raises(ValueError, match="no"):
        instructions.mixture([parts[0].select([])], rows_per_task=2)


def test_tasks_are_read_back_from_the_records():
    tasks = instructions.tasks_of(records())
    assert tasks["genre"].choices == ("news", "science fiction", "romance")
    assert tasks["sentiment"].choices == ("negative", "positive") and tasks["qa"].choices is None


def test_jsonl_round_trip_and_clear_errors(tmp_path):
    path = instructions.write_jsonl(records(), tmp_path / "train.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7 and set(json.loads(lines[0])) == set(instructions.TASK_COLUMNS)
    assert instructions.read_jsonl(path).to_dict() == records().select_columns(list(instructions.TASK_COLUMNS)).to_dict()
    (tmp_path / "bad.jsonl").write_text('{"task": "qa", "instruction": "x", "input": "y"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: the record has no output"):
        instructions.read_jsonl(tmp_path / "bad.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="holds no records"):
        instructions.read_jsonl(tmp_path / "empty.jsonl")


def test_llama_factory_entry_and_config_agree_with_the_records(tmp_path):
    info = instructions.llama_factory_dataset_info("book", tmp_path / "train.jsonl")
    assert info["book"]["file_name"] == "train.jsonl" and info["book"]["formatting"] == "alpaca"
    assert set(info["book"]["columns"].values()) == {"instruction", "input", "output"}
    config = yaml.safe_load(instructions.llama_factory_config("book", "org/model", "out"))
    assert config["dataset"] == "book" and config["stage"] == "sft" and config["finetuning_type"] == "lora"
    assert config["lora_target"].split(",") == peft_tuning.LORA_TARGETS["llama"]  # what sft adapts in SmolLM2


def test_answers_are_scored_for_content_and_form():
    rows = records()
    expected = list(rows["output"])
    perfect = instructions.score(rows, expected)
    assert all(s["exact_match"] == 1.0 and s["well_formed"] == 1.0 for s in perfect.values())
    chatty = instructions.score(rows, [f"The answer is: {e}." for e in expected])
    assert all(s["exact_match"] == 0.0 for s in chatty.values())
    task = instructions.tasks_of(rows)["qa"]
    assert instructions.well_formed("smith.", task, "Mr. Smith came") and not instructions.well_formed("Jones", task, "Mr. Smith")
    assert instructions.normalized("  Science   Fiction! ") == "science fiction"
    with pytest.raises(ValueError, match="2 answers for 7 records"):
        instructions.score(rows, ["a", "b"])


@pytest.fixture(scope="module")
def chat_tokenizer(provisioned):
    return AutoTokenizer.from_pretrained(str(resources.SMOLLM2.path()))


def tiny_chat_model(tokenizer) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id))


def test_sft_puts_only_the_answer_in_the_loss(chat_tokenizer):
    rows = records()
    run = instructions.sft(tiny_chat_model(chat_tokenizer), chat_tokenizer, rows, lr=1e-3, epochs=1, batch_size=2,
                           build_only=True)
    kept_rows = len(run.trainer.train_dataset)  # records whose answer a 256-token cut would lose are dropped
    assert 0 < kept_rows <= len(rows)
    batch = instructions.trainer_features(run.trainer, rows=kept_rows)
    for ids, labels, record in zip(batch["input_ids"], batch["labels"], run.trainer.train_dataset):
        kept = ids[labels != -100].tolist()
        answer = chat_tokenizer(record["completion"][0]["content"] + chat_tokenizer.eos_token,
                                add_special_tokens=False)["input_ids"]
        assert kept[:len(answer)] == answer and len(kept) - len(answer) <= 1  # the template's newline at most
        assert record["prompt"][0]["content"] in chat_tokenizer.decode(ids)  # the prompt is there, outside the loss


def test_sft_trains_the_adapter_only(chat_tokenizer):
    model = tiny_chat_model(chat_tokenizer)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    run = instructions.sft(model, chat_tokenizer, records(), lr=1e-2, epochs=1, batch_size=2)
    changed = {n for n, p in run.model.named_parameters() if "lora_" not in n
               and not torch.equal(p.detach(), before[n.removeprefix("base_model.model.").replace(".base_layer", "")])}
    assert not changed and run.train_seconds > 0
    assert any("lora_B" in n and p.abs().sum() > 0 for n, p in run.model.named_parameters())
    with pytest.raises(ValueError, match="no instruction records"):
        instructions.sft(tiny_chat_model(chat_tokenizer), chat_tokenizer, records().select([]), lr=1e-3, epochs=1)


def test_answers_generate_one_stripped_string_per_record(chat_tokenizer):
    side = chat_tokenizer.padding_side
    said = instructions.answers(tiny_chat_model(chat_tokenizer), chat_tokenizer, records(), max_new_tokens=3,
                                batch_size=2)
    assert len(said) == 7 and all(isinstance(a, str) and a == a.strip() for a in said)
    assert chat_tokenizer.padding_side == side  # left padding for generation only
