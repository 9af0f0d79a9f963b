"""The three training presets of the product documents."""
from __future__ import annotations

from dataclasses import asdict, dataclass

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    lora_r: int
    lora_alpha: float
    learning_rate: float
    num_epochs: int
    batch_size: int
    gradient_accumulation_steps: int
    lora_dropout: float = 0.05
    warmup_ratio: float = 0.03
    max_seq_length: int = 2048
    lr_scheduler: str = "cosine"

    def hyperparameters(self) -> dict:
        values = asdict(self)
        del values["name"], values["summary"]
        values["target_modules"] = list(TARGET_MODULES)
        return values


PRESETS: dict[str, Preset] = {
    p.name: p for p in (
        Preset("conservative", "Small, careful updates: the safest choice for a first run or a "
               "small dataset; least risk of forgetting.",
               lora_r=8, lora_alpha=16, learning_rate=1e-4, num_epochs=2,
               batch_size=2, gradient_accumulation_steps=8),
        Preset("balanced", "The default: enough capacity and steps to learn a persona's voice "
               "from a few hundred conversations.",
               lora_r=16, lora_alpha=32, learning_rate=2e-4, num_epochs=3,
               batch_size=4, gradient_accumulation_steps=4),
        Preset("aggressive", "Most capacity and the highest learning rate: learns fastest, "
               "risks overfitting and forgetting; check the held-out numbers.",
               lora_r=32, lora_alpha=64, learning_rate=3e-4, num_epochs=4,
               batch_size=4, gradient_accumulation_steps=4, lora_dropout=0.1),
    )
}
DEFAULT_PRESET = "balanced"
