"""What the ``trainer:`` section may hold: every keyword of ``pytorch_lightning.Trainer`` that
takes a plain value, checked before anything runs or is written.

Kept free of torch and Lightning (``zoo list`` and ``--help`` validate params.yaml too);
``tests/test_config.py`` holds these lists to Lightning's own signature and precision values,
so a Lightning upgrade that adds or renames a keyword fails a test instead of passing silently.
Which accelerators and how many devices this machine has is asked of torch only by the stage
that trains (``check_available``).
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from pipeline.plumbing.errors import ConfigError

# Lightning's accepted ``precision`` values (``lightning_fabric.connector._PRECISION_INPUT``).
PRECISIONS: tuple[Union[int, str], ...] = (
    64, 32, 16,
    "transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true", "bf16-mixed", "32-true", "64-true",
    "64", "32", "16", "bf16",
)

# The ``accelerator`` names Lightning knows (an Accelerator object cannot come from YAML).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")

# Keywords the zoo sets itself, and why a value from params.yaml cannot replace it.
REFUSED = {
    "default_root_dir": "set by the zoo: each seed trains in its own folder, renamed into models/<experiment>/ when done",
    "callbacks": "set by the zoo (checkpoints, plateau stopping, the training record); a Python object cannot come from YAML",
    "logger": "set by the zoo: every seed logs into its own MLflow run (tracking: section)",
    "enable_checkpointing": "set by the zoo: its checkpoints make a killed run resumable and keep the best model",
    "enable_model_summary": "set by the zoo (off: the parameter count is logged to MLflow instead)",
    "plugins": "takes Python objects, which cannot come from YAML",
    "model_registry": "the zoo registers its models in MLflow (zoo compare), not in Lightning's registry",
}

# Trainer keywords that TrainerSettings does not declare: handed to Lightning only when set, so
# an existing configuration's logged parameters and resume fingerprint stay as they were.
# Types from ``Trainer.__init__``'s hints, less the Python objects YAML cannot give.
MORE: dict[str, Any] = {
    "limit_test_batches": Optional[Union[int, float]],
    "limit_predict_batches": Optional[Union[int, float]],
    "benchmark": Optional[bool],
    "inference_mode": bool,
    "use_distributed_sampler": bool,
    "detect_anomaly": bool,
    "barebones": bool,
    "sync_batchnorm": bool,
    "reload_dataloaders_every_n_epochs": int,
    "enable_autolog_hparams": bool,
}


def check_precision(value: Any) -> Any:
    if isinstance(value, bool) or value not in PRECISIONS:
        raise ValueError(f"unknown precision {value!r}; choose from: {', '.join(dict.fromkeys(str(p) for p in PRECISIONS))}")
    return value


def check_accelerator(value: Any) -> Any:
    if value not in ACCELERATORS:
        raise ValueError(f"unknown accelerator {value!r}; choose from: {', '.join(ACCELERATORS)}")
    return value


def check_devices(value: Any) -> Any:
    """``auto``, a count (``-1``: all), a list of indices, or Lightning's string forms of those
    (``"2"``, ``"0,1"``)."""
    if isinstance(value, str) and value != "auto":
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or not all(p.lstrip("-").isdigit() for p in parts):
            raise ValueError(f"expected auto, a number of devices or a list of device indices (got {value!r})")
    if isinstance(value, int) and (value == 0 or value < -1):
        raise ValueError(f"expected a positive number of devices or -1 for all (got {value!r})")
    return value


def _available(accelerator: str) -> tuple[bool, int, str]:
    """(present, device count, what it is) of an accelerator on this machine."""
    import torch

    if accelerator in ("gpu", "cuda"):
        ok = torch.cuda.is_available()
        return ok, torch.cuda.device_count() if ok else 0, "CUDA GPU"
    if accelerator == "mps":
        ok = torch.backends.mps.is_available()
        return ok, 1 if ok else 0, "Apple MPS device"
    if accelerator == "tpu":
        import importlib.util

        ok = importlib.util.find_spec("torch_xla") is not None
        return ok, 8 if ok else 0, "TPU (torch_xla)"
    return True, os.cpu_count() or 1, "CPU core"


def check_available(trainer, path: str) -> None:
    """Fail, naming ``<path>.accelerator`` or ``<path>.devices``, when this machine lacks the
    accelerator or has fewer devices than asked for. ``auto`` takes what there is."""
    import torch

    accelerator = trainer.accelerator
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    present, count, what = _available(accelerator)
    if not present:
        raise ConfigError(f"{path}.accelerator", f"{trainer.accelerator}: no {what} on this machine; use cpu or auto")
    devices = trainer.devices
    if isinstance(devices, str) and devices != "auto":
        parts = [int(p) for p in devices.split(",") if p.strip()]
        devices = parts if "," in trainer.devices else parts[0]
    if accelerator == "cpu" and isinstance(devices, list):
        raise ConfigError(f"{path}.devices", "the CPU takes a number of processes, not a list of device indices")
    if isinstance(devices, int) and devices > count and accelerator != "cpu":
        raise ConfigError(f"{path}.devices", f"{devices} asked for, this machine has {count} {what}{'s' if count != 1 else ''}")
    if isinstance(devices, list) and devices and max(devices) >= count:
        raise ConfigError(f"{path}.devices", f"device index {max(devices)} asked for, this machine has {count} {what}{'s' if count != 1 else ''}")
