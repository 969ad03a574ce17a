"""Build the tiny random model the embedded stack serves, offline, and cache it.

No weights are downloaded: a byte-level BPE tokenizer is trained on a few lines
of text and a small Llama configuration is initialised at random. A second
revision serves as the canary: ``canary`` is the stable weights under a new revision (it
answers the same prompts the same way, greedily), ``canary-wrong`` is built from other
weights (another seed and MLP width), the revision a rollout must catch.
The build is keyed by its recipe, so a changed recipe builds a new directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "Serving large language models reliably needs drills, not hope.",
    "Latency, throughput, errors and saturation tell operators what users feel.",
    "A node restarts, a gateway fails over, the cache is released, alerts resolve.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?-'\"()",
]


@dataclass(frozen=True)
class ModelRecipe:
    """What makes one tiny model; hashing it names the cache entry."""

    revision: str = "stable"
    seed: int = 1234
    vocab_size: int = 512
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 1  # head size 64: one the CPU attention supports
    num_kv_heads: int = 1
    max_positions: int = 2048
    #: Tied input and output embeddings make a tiny random model echo the prompt's last
    #: token whatever its other weights; untied, its greedy answers are its own.
    tie_embeddings: bool = True

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return f"{self.revision}-{hashlib.sha256(blob).hexdigest()[:12]}"


STABLE = ModelRecipe()
CANARY = ModelRecipe(revision="canary")
WRONG_CANARY = ModelRecipe(revision="canary-wrong", seed=4321, intermediate_size=192,
                           tie_embeddings=False)
RECIPES = {r.revision: r for r in (STABLE, CANARY, WRONG_CANARY)}


def default_cache_dir() -> Path:
    base = os.environ.get("LLM_DRILL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "llm-drill")
    return Path(base) / "models"


def ensure_model(recipe: ModelRecipe, cache_dir: Path | None = None) -> Path:
    """Return the directory of the model, building it first if it is not cached."""
    target = (cache_dir or default_cache_dir()) / recipe.key()
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        _build(recipe, staging)
        os.replace(staging, target) if not target.exists() else shutil.rmtree(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _build(recipe: ModelRecipe, out: Path) -> None:
    _build_tokenizer(recipe).save_pretrained(str(out))
    _build_weights(recipe).save_pretrained(str(out), safe_serialization=True)


def _build_tokenizer(recipe: ModelRecipe) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<unk>", "<pad>"]
    trainer = trainers.BpeTrainer(vocab_size=recipe.vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAINING_TEXT * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # transformers is untyped
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = recipe.max_positions
    return fast


def _build_weights(recipe: ModelRecipe) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(recipe.seed)
    config = LlamaConfig(
        vocab_size=recipe.vocab_size, hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size, num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads, num_key_value_heads=recipe.num_kv_heads,
        max_position_embeddings=recipe.max_positions, bos_token_id=0, eos_token_id=1,
        pad_token_id=3, dtype="bfloat16", tie_word_embeddings=recipe.tie_embeddings,
    )
    model: Any = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]  # untyped
    return model.to(torch.bfloat16)


if __name__ == "__main__":
    for recipe in RECIPES.values():
        print(ensure_model(recipe))
