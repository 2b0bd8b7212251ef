"""The learning-rate curve: linear warmup, an optional hold, then cosine."""
import math


def learning_rate(step: int, init_lr: float, last_lr: float, total_steps: int,
                  warmup: int, hold: int = 0) -> float:
    """lr of optimizer step `step` (0-based): init_lr for the first `hold` steps, then cosine
    from init_lr to last_lr over the remaining total_steps - hold (held at last_lr after), times
    the linear warmup factor min(1, (step + 1) / warmup). hold 0 is the authors' curve."""
    hold = min(hold, total_steps)
    progress = min(max(step - hold, 0), total_steps - hold) / max(total_steps - hold, 1)
    cosine = last_lr + (init_lr - last_lr) * (1 + math.cos(math.pi * progress)) / 2
    return cosine * min(1.0, (step + 1) / max(warmup, 1))
