"""Fine-tuning strategies for a pretrained encoder classifier, compared on one task and one budget:
every weight (full fine-tuning), the head alone (a linear probe), the top layers, gradual unfreezing,
layer-wise learning-rate decay, LoRA adapters from ``peft`` at several ranks, and QLoRA (LoRA on a base
quantized to 4 bits by ``bitsandbytes``). Also LoRA's forward pass written out, and an adapter saved,
reloaded on a fresh base and merged into it.

LoRA (Hu et al., 2021) keeps a pretrained weight ``W`` (out x in) frozen and learns a low-rank update:
``h = W x + (alpha / r) B A x`` with ``A`` (r x in) and ``B`` (out x r); ``B`` starts at zero, so an
untrained adapter changes nothing.
"""

from __future__ import annotations

import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import DatasetDict
from peft import LoraConfig, PeftModel, TaskType, get_peft_model, prepare_model_for_kbit_training
from peft.tuners.lora import Linear as LoraLinear
from safetensors.torch import save_file
from transformers import BitsAndBytesConfig, PreTrainedModel, Trainer, TrainerCallback

from . import heads, settings, training
from .memory import PeakMemory

# peft 0.21 asks transformers 5 for `is_gradient_checkpointing`, deprecated there: a FutureWarning on every
# wrap and load that says nothing about the reader's code.
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

LAYER = re.compile(r"\.layer\.(\d+)\.")  # encoder blocks: bert.encoder.layer.3. / distilbert.transformer.layer.3.


@dataclass(frozen=True)
class Strategy:
    """What a run trains, and at which learning rate:

    - ``"full"``: every weight;
    - ``"head"``: the classification head only (a linear probe);
    - ``"top"``: the top ``layers`` blocks, the pooler and the head;
    - ``"gradual"``: gradual unfreezing (ULMFiT): the head first, then one block deeper at a time, the
      embeddings last (:class:`GradualUnfreezing`);
    - ``"llrd"``: every weight, the learning rate ``lr x decay ** depth`` (:func:`depth`): layer-wise
      learning-rate decay;
    - ``"lora"``: rank-``rank`` adapters on the attention's query and value projections, plus the head;
    - ``"qlora"``: the same adapters on a base model loaded in 4 bits (:func:`four_bit`)."""

    name: str
    kind: str
    lr: float
    layers: int = 0
    rank: int = 0
    decay: float = 1.0


KINDS = ("full", "head", "top", "gradual", "llrd", "lora", "qlora")

STRATEGIES = (
    Strategy("full fine-tuning", "full", 5e-5),
    Strategy("head only (linear probe)", "head", 1e-3),
    Strategy("top 2 blocks + head", "top", 1e-4, layers=2),
    # the top blocks' rate: early stages train the top of the network only
    Strategy("gradual unfreezing", "gradual", 1e-4),
    # 1e-4 at the head, 8e-5 for the top block ... 2.6e-5 for the lowest, 2.1e-5 for the embeddings (6 blocks)
    Strategy("layer-wise lr decay 0.8", "llrd", 1e-4, decay=0.8),
    # LoRA at 2e-3: on the cpu profile's 94 steps, 5e-4 left r=4 at 0.683 test accuracy and 1e-3 at 0.767,
    # where 2e-3 reached 0.806 (full fine-tuning: 0.824)
    Strategy("LoRA r=4", "lora", 2e-3, rank=4),
    Strategy("LoRA r=8", "lora", 2e-3, rank=8),
    Strategy("LoRA r=16", "lora", 2e-3, rank=16),
    # needs the base loaded with quantization_config=four_bit()
    Strategy("QLoRA r=8 (4-bit base)", "qlora", 2e-3, rank=8),
)


# The attention's query and value projections (the LoRA paper's choice), by architecture.
LORA_TARGETS = {"bert": ["query", "value"], "distilbert": ["q_lin", "v_lin"], "gemma3_text": ["q_proj", "v_proj"],
                "llama": ["q_proj", "v_proj"]}


def lora_config(model: PreTrainedModel, rank: int, task: TaskType = TaskType.SEQ_CLS) -> LoraConfig:
    """LoRA for ``task`` with ``model``: rank ``rank``, alpha = 2 x rank (so alpha / r = 2 at every rank),
    no dropout, on :data:`LORA_TARGETS` of its architecture. For sequence classification (the default)
    ``TaskType.SEQ_CLS`` also trains and saves the new head; ``TaskType.CAUSAL_LM`` adapts a language model."""
    kind = model.config.model_type
    if kind not in LORA_TARGETS:
        raise ValueError(f"no LoRA targets named for model type {kind!r}: add its query and value projections"
                         f" to peft_tuning.LORA_TARGETS (known: {', '.join(LORA_TARGETS)})")
    return LoraConfig(task_type=task, r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                      target_modules=LORA_TARGETS[kind])


def zero_head(model: PreTrainedModel) -> torch.nn.Module:
    """Set the new classification head of ``model`` (its ``score`` layer, a decoder's, or ``classifier``) to
    zero and return it: the classifier then starts at even odds (a loss of ln 2 for two labels) whatever the
    scale of the hidden state it reads. A decoder's last hidden state can be large (Gemma 3's is about 200
    long), and a head drawn at random with the usual std 0.02 would start with confident logits, large
    gradients, and updates that gradient clipping shrinks."""
    head = getattr(model, "score", None) or getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Linear):
        raise ValueError(f"{type(model).__name__} has no linear head named score or classifier to set to zero")
    with torch.no_grad():
        head.weight.zero_()
        if head.bias is not None:
            head.bias.zero_()
    return head


def four_bit() -> BitsAndBytesConfig:
    """QLoRA's quantization of a base model (Dettmers et al., 2023), for ``from_pretrained``'s
    ``quantization_config``: every linear layer's weight stored as 4-bit NormalFloat (NF4) in blocks of
    64, with the blocks' scales quantized again (double quantization); each layer dequantizes its weight
    to compute in bf16 on a GPU, in fp32 on a CPU. The embeddings, LayerNorms and the new
    classification head (``classifier``, DistilBERT's ``pre_classifier`` too) stay in full precision."""
    try:
        import bitsandbytes  # noqa: F401 (transformers needs it to load in 4 bits)
    except ImportError as error:
        raise ImportError("QLoRA loads the base model in 4 bits with bitsandbytes, which is not installed:"
                          " pip install bitsandbytes (see requirements.txt for the tested version)") from error
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32,
                              llm_int8_skip_modules=["classifier"])


def four_bit_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The linear layers of ``model`` stored in 4 bits (bitsandbytes ``Linear4bit``), by module name."""
    from bitsandbytes.nn import Linear4bit

    return {name: module for name, module in model.named_modules() if isinstance(module, Linear4bit)}


def dequantized(layer: torch.nn.Module) -> torch.Tensor:
    """The weight a 4-bit layer (:func:`four_bit_layers`) computes with: each NF4 code's level times
    its block's scale, as an (out x in) fp32 tensor on the CPU."""
    from bitsandbytes.functional import dequantize_4bit

    return dequantize_4bit(layer.weight.data, layer.weight.quant_state).float().cpu()


def block_count(model: PreTrainedModel) -> int:
    """How many transformer blocks the encoder has (from its parameter names)."""
    found = {int(m.group(1)) for name, _ in model.named_parameters() if (m := LAYER.search(name))}
    if not found:
        raise ValueError(f"{type(model).__name__}: no parameter names with '.layer.<i>.'; not an encoder")
    return max(found) + 1


def depth(name: str, blocks: int) -> int:
    """How far below the output a parameter of an encoder with ``blocks`` blocks sits: 0 for the new
    head, 1 for the top block and the pooler above it ... ``blocks`` for the lowest block, ``blocks + 1``
    for the embeddings."""
    if heads.is_head(name):
        return 0
    if ".pooler." in name:
        return 1
    block = LAYER.search(name)
    return blocks - int(block.group(1)) if block else blocks + 1


def train_to_depth(model: PreTrainedModel, deepest: int) -> None:
    """Train the parameters of ``model`` down to depth ``deepest`` (:func:`depth`); freeze the rest."""
    blocks = block_count(model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = depth(name, blocks) <= deepest


def prepare(model: PreTrainedModel, strategy: Strategy) -> PreTrainedModel:
    """The model to train under ``strategy``: the same model with the weights it leaves alone frozen
    (``requires_grad=False``; gradual unfreezing starts with the head alone), or, for LoRA and QLoRA, a
    ``peft`` model wrapping it. QLoRA needs ``model`` loaded with ``quantization_config=four_bit()``."""
    if strategy.kind not in KINDS:
        raise ValueError(f"unknown strategy kind {strategy.kind!r}: {', '.join(KINDS)}")
    quantized = getattr(model, "is_loaded_in_4bit", False)
    if (strategy.kind == "qlora") != quantized:
        raise ValueError(f"strategy {strategy.name!r} ({strategy.kind}) on a model "
                         + ("not loaded in 4 bits: load it with quantization_config=peft_tuning.four_bit()"
                            if not quantized else "loaded in 4 bits: only QLoRA trains on a quantized base"))
    if strategy.kind == "qlora":  # freezes the base, keeps norms and head in fp32
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if strategy.kind in ("lora", "qlora"):
        return get_peft_model(model, lora_config(model, strategy.rank))
    everything = block_count(model) + 1
    train_to_depth(model, {"full": everything, "llrd": everything, "head": 0, "gradual": 0,
                           "top": strategy.layers}[strategy.kind])
    return model


def layerwise_groups(model: PreTrainedModel, lr: float, decay: float) -> list[dict[str, object]]:
    """AdamW parameter groups over every parameter of ``model``, frozen or not: learning rate
    ``lr x decay ** depth`` (:func:`depth`), weight decay :data:`~companion.training.WEIGHT_DECAY` except
    for biases and normalisation weights (Trainer's own rule)."""
    blocks = block_count(model)
    decayed = set(Trainer.get_decay_parameter_names(None, model))  # the method reads no trainer state
    groups: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        groups.setdefault((depth(name, blocks), name in decayed), []).append(parameter)
    return [{"params": params, "lr": lr * decay ** level, "weight_decay": training.WEIGHT_DECAY if decays else 0.0}
            for (level, decays), params in sorted(groups.items())]


def optimizer(model: PreTrainedModel, strategy: Strategy) -> torch.optim.Optimizer | None:
    """The optimizer a strategy needs instead of Trainer's (which takes the trainable weights at one
    rate): for layer-wise decay and gradual unfreezing, AdamW over :func:`layerwise_groups` (gradual
    unfreezing: at one rate, ``decay`` 1; frozen weights get no gradient, so AdamW leaves them alone
    until they are unfrozen), fused into one kernel per step as Trainer's own is. ``None`` for the other
    strategies."""
    if strategy.kind not in ("llrd", "gradual"):
        return None
    return torch.optim.AdamW(layerwise_groups(model, strategy.lr, strategy.decay), lr=strategy.lr, fused=True)


class GradualUnfreezing(TrainerCallback):
    """Gradual unfreezing (Howard & Ruder 2018, ULMFiT) spread over a run: before each step, train down
    to depth ``stage`` (:func:`depth`), where the run's steps are cut into ``blocks + 2`` equal stages:
    the head alone, then one more block from the top per stage, the embeddings in the last. (A run of
    fewer steps than stages skips some, and never reaches the deepest.)"""

    def __init__(self, blocks: int):
        self.blocks = blocks

    def stage(self, step: int, steps: int) -> int:
        """The depth trained at (0-based) ``step`` of a run of ``steps`` steps."""
        return min(step * (self.blocks + 2) // steps, self.blocks + 1)

    def on_step_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001 (Trainer's hook)
        train_to_depth(model, self.stage(state.global_step, state.max_steps))


def trainable(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable parameters, all parameters); a 4-bit weight counts its parameters, not the bytes
    that pack two of them each."""
    if isinstance(model, PeftModel):
        return model.get_nb_trainable_parameters()
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()))


def saved_bytes(model: torch.nn.Module) -> int:
    """Bytes on disk of what a run must keep: for a peft model its adapter (``save_pretrained``: the
    LoRA matrices and the head), otherwise the weights training changed (every trainable parameter) as
    safetensors; for full fine-tuning that is the whole model."""
    with tempfile.TemporaryDirectory() as folder:
        if isinstance(model, PeftModel):
            model.save_pretrained(folder)
        else:
            save_file({n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad},
                      str(Path(folder) / "model.safetensors"))
        return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


@dataclass(frozen=True)
class Outcome:
    """One strategy's run: the :class:`~companion.training.Run`, its test scores, trainable and total
    parameters, the bytes it must save and the peak extra memory of training."""

    strategy: Strategy
    run: training.Run
    test: dict[str, object]
    trainable: int
    total: int
    saved_bytes: int
    peak_bytes: int


def compare(strategy: Strategy, model: PreTrainedModel, tokenizer, ds: DatasetDict, *, epochs: float,
            profile: settings.Profile | None = None) -> Outcome:
    """Train ``model`` (a fresh pretrained classifier) under ``strategy`` on ``ds`` through the book's
    fine-tuning spine (no validation passes along the way) and score it on the test split. Trainable
    parameters are counted after the run (gradual unfreezing ends with every weight trained)."""
    prepared = prepare(model, strategy)
    unfreezing = [GradualUnfreezing(block_count(prepared))] if strategy.kind == "gradual" else []
    with PeakMemory() as memory:
        run = training.finetune(prepared, tokenizer, ds, lr=strategy.lr, epochs=epochs, profile=profile,
                                name=f"strategy-{strategy.kind}-{strategy.layers or strategy.rank}",
                                evaluate_during=False, optimizer=optimizer(prepared, strategy), callbacks=unfreezing)
    n_trainable, total = trainable(prepared)
    return Outcome(strategy, run, run.evaluate("test"), n_trainable, total, saved_bytes(prepared), memory.peak)


def lora_by_hand(layer: LoraLinear, x: torch.Tensor) -> torch.Tensor:
    """A peft LoRA layer's output computed from its own tensors: ``W x + b + (alpha / r) B A x``."""
    frozen = layer.get_base_layer()
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    return x @ frozen.weight.T + frozen.bias + layer.scaling["default"] * (x @ a.T @ b.T)


def lora_layers(model: PeftModel) -> dict[str, LoraLinear]:
    """The LoRA-wrapped linear layers of a peft model, by module name."""
    return {name: module for name, module in model.named_modules() if isinstance(module, LoraLinear)}


def logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The classifier's logits for a tokenized batch (evaluation mode, no gradients, on the model's
    device), returned on the CPU in fp32."""
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        return model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()


def seconds_per_pass(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], repeats: int = 3) -> float:
    """Fastest of ``repeats`` timed passes of ``model`` over ``batches`` (after one warm-up batch)."""
    logits(model, batches[0])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            logits(model, batch)
        best = min(best, time.perf_counter() - start)
    return best
