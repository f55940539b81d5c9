import pytest
import torch
import yaml
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.commands.launch import launch_command_parser
from transformers import BertConfig, BertModel

from companion import distributed, resources, settings


@pytest.fixture(scope="module")
def tiny_encoder(provisioned, tmp_path_factory):
    """A 2-layer BERT with the offline encoder's vocabulary, saved with its tokenizer as a folder."""
    folder = tmp_path_factory.mktemp("tiny-encoder")
    tok = resources.tokenizer("all-MiniLM-L6-v2")
    torch.manual_seed(settings.SEED)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=64), add_pooling_layer=False).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


TRAIN = {"text": ["a wonderful film", "dull and far too long", "great acting", "a mess", "loved every minute of it",
                  "boring", "superb", "awful script and worse acting"] * 4, "label": [1, 0, 1, 0, 1, 0, 1, 0] * 4}
TEST = {"text": ["wonderful acting", "a dull mess", "superb", "far too long"], "label": [1, 0, 1, 0]}


def test_two_processes_take_the_same_steps_as_one(tiny_encoder):
    one = distributed.launch(1, tiny_encoder, TRAIN, TEST, batch_size=8, lr=1e-3, epochs=2)
    two = distributed.launch(2, tiny_encoder, TRAIN, TEST, batch_size=8, lr=1e-3, epochs=2)
    assert (one["processes"], two["processes"]) == (1, 2) and "gloo" in two["backend"]
    assert len(one["step_losses"]) == len(two["step_losses"]) == 8  # 32 rows, batches of 8, 2 epochs
    assert max(abs(a - b) for a, b in zip(one["step_losses"], two["step_losses"])) < 1e-5
    assert abs(one["test_loss"] - two["test_loss"]) < 1e-5 and one["test_accuracy"] == two["test_accuracy"]


def test_launch_refuses_batches_that_do_not_split(tiny_encoder):
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        distributed.launch(3, tiny_encoder, TRAIN, TEST, batch_size=8, lr=1e-3)
    with pytest.raises(ValueError, match="do not fill batches of 12"):
        distributed.launch(2, tiny_encoder, TRAIN, TEST, batch_size=12, lr=1e-3)
    with pytest.raises(ValueError, match="the test rows"):
        distributed.launch(2, tiny_encoder, TRAIN, {"text": [], "label": []}, batch_size=8, lr=1e-3)


def test_the_command_is_torchrun_on_the_loopback_address():
    line = distributed.command(2, ["--cpu"])
    assert line[1:4] == ["-m", "torch.distributed.run", "--nnodes"] and "127.0.0.1:0" in line
    assert line[-2:] == ["companion.distributed", "--cpu"]
    with pytest.raises(ValueError, match="at least one process"):
        distributed.command(0, [])


@pytest.mark.parametrize("name, kind, section", [("deepspeed_zero2.yaml", "DEEPSPEED", "deepspeed_config"),
                                                  ("fsdp.yaml", "FSDP", "fsdp_config")])
def test_the_multi_gpu_configs_are_what_accelerate_launch_reads(name, kind, section):
    path = distributed.CONFIGS / name
    config = ClusterConfig.from_yaml_file(str(path))  # refuses unknown top-level keys
    assert config.distributed_type.value == kind and config.num_processes == 4 and config.mixed_precision == "bf16"
    launch_options = {action.dest for action in launch_command_parser()._actions}
    assert set(yaml.safe_load(path.read_text())[section]) <= launch_options  # each becomes a launch option


def test_zero_memory_follows_the_papers_arithmetic():
    # the ZeRO paper's example: 7.5 billion parameters on 64 devices take 120 GB each without sharding,
    # 31.4 GB with stage 1, 16.6 GB with stage 2, 1.88 GB with stage 3
    expected = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.88}
    for stage, gigabytes in expected.items():
        total = distributed.zero_memory(7_500_000_000, 64, stage)["total"] / 1e9
        assert total == pytest.approx(gigabytes, rel=0.01)
    assert distributed.zero_memory(10, 1, 3) == distributed.zero_memory(10, 1, 0)  # one device shards nothing
    with pytest.raises(ValueError, match="stages 0"):
        distributed.zero_memory(10, 2, 4)
