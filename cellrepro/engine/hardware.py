"""Devices, one Lightning Fabric per process, fused Adam, channels_last, and freeing the GPU.

What :func:`cellrepro.engine.train.fit` needs to use the hardware, kept apart from the loop itself:

* :func:`resolve_accelerator` / :func:`default_precision`: ``"auto"`` is cuda, then mps, then
  cpu; bf16-mixed on a GPU that supports it, 32-true elsewhere.
* :func:`make_fabric`: a launched Fabric, made once per process and configuration and reused
  by every later call (a new Fabric per ``fit`` re-ran device and precision set-up each time).
  On CUDA it sets ``torch.set_float32_matmul_precision("high")``, so fp32 matrix products
  use TF32 Tensor Cores, and it lowers Lightning's loggers to WARNING so that chapters do not
  carry "Using bfloat16 Automatic Mixed Precision (AMP)" once per model.
* :func:`adam`: ``torch.optim.Adam`` with ``fused=True`` when this process trains on CUDA.
* :func:`release`: move models (and optimizer state) back to the CPU and return the cached
  CUDA memory, e.g. after each cross-validation fold.
* :func:`torch_device` (a device name, ``"auto"`` resolved, as a ``torch.device``) and :func:`timed`
  (wall time of a call, CUDA synchronised), for inference and benchmarks outside ``fit``.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any, Iterable

import torch
from torch import nn

from .. import CellreproError

log = logging.getLogger(__name__)

#: Lightning's loggers whose INFO messages (precision and Tensor-Core hints) are library chatter.
LIGHTNING_LOGGERS = ("lightning_fabric", "lightning.fabric", "lightning_fabric.utilities.rank_zero")

_FABRICS: dict[tuple, Any] = {}


def resolve_accelerator(device: str = "auto") -> tuple[str, Any]:
    """Map ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` to Fabric's (accelerator, devices).

    >>> resolve_accelerator("cuda:1")
    ('cuda', [1])
    """
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda", 1
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps", 1
        return "cpu", 1
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "mps"):
        raise CellreproError(f"unknown device '{device}': use auto, cpu, cuda, cuda:N or mps")
    return kind, ([int(index)] if index else 1)


def torch_device(device: str = "auto") -> torch.device:
    """``"auto"`` (cuda, then mps, then cpu), ``"cpu"``, ``"cuda"`` or ``"cuda:1"`` as a ``torch.device``.

    >>> torch_device("cpu"), torch_device("cuda:1")
    (device(type='cpu'), device(type='cuda', index=1))
    """
    kind, devices = resolve_accelerator(device)
    return torch.device(kind, devices[0]) if isinstance(devices, list) else torch.device(kind)


def timed(fn: Any, device: Any = None) -> tuple[Any, float]:
    """``(fn(), seconds)`` by ``time.perf_counter``, CUDA synchronised before and after when ``device``
    is a CUDA device (kernels are asynchronous: without it the time would end at their launch)."""
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


#: Precision and memory format each chapter's networks train with on a CPU, with the measured ratio of
#: the best alternative's images/s to fp32's (``python benchmarks/train_precision.py --chapters``, 2 cores of
#: an AMD EPYC without AVX512-BF16 or AMX, idle, torch 2.14; benchmarks/README.md has the whole table).
#: bf16-mixed ran at 0.09-0.64x fp32 on every network, so all stay in fp32; channels_last gained at most
#: 1.12x and not stably between passes (CPnet 1.10 then 0.93), so none switches. On a CPU with native bf16
#: the benchmark prints other ratios: re-measure before changing an entry. Values: (precision,
#: channels_last, best alternative / fp32 as measured, that alternative).
CPU_SETTINGS: dict[str, tuple[str, bool, float, str]] = {
    "organoid_unet": ("32-true", False, 0.98, "channels_last"),
    "multimodal_cdnet": ("32-true", False, 1.03, "channels_last"),
    "multimodal_cpnet": ("32-true", False, 0.93, "channels_last (1.10 in a loaded pass)"),
    "multimodal_vgg_unet": ("32-true", False, 0.97, "channels_last; bf16-mixed 0.64"),
    "mmcs_cpnet": ("32-true", False, 0.94, "channels_last"),
    "mmcs_unet": ("32-true", False, 1.02, "channels_last"),
    "mmcs_swinunetr": ("32-true", False, 1.06, "channels_last (1.01 in a loaded pass)"),
    "brightfield_seunet": ("32-true", False, 0.88, "channels_last"),
    "brightfield_pix2pix": ("32-true", False, 1.12, "channels_last (1.04 in a loaded pass)"),
    "spheroid_maskrcnn": ("32-true", False, 0.94, "channels_last"),
    "spheroid_unetpp": ("32-true", False, 1.06, "channels_last (1.06 in a loaded pass too)"),
}


def cpu_setting(network: str) -> tuple[str, bool]:
    """``(precision, channels_last)`` for training ``network`` on a CPU (:data:`CPU_SETTINGS`).

    >>> cpu_setting("mmcs_cpnet")
    ('32-true', False)
    """
    if network not in CPU_SETTINGS:
        raise CellreproError(f"no CPU setting measured for {network!r}; known: {', '.join(CPU_SETTINGS)}")
    precision, channels_last, _, _ = CPU_SETTINGS[network]
    return precision, channels_last


def default_precision(accelerator: str) -> str:
    """bf16-mixed on a GPU that supports it, 32-true elsewhere.

    >>> default_precision("cpu")
    '32-true'
    """
    if accelerator == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def quiet_lightning() -> None:
    """Lower Lightning Fabric's loggers to WARNING (its INFO lines are not results)."""
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def make_fabric(device: str = "auto", precision: str | None = None, devices: Any = None,
                num_nodes: int = 1, strategy: str = "auto"):
    """The launched :class:`lightning_fabric.Fabric` of this process for these settings.

    Made on the first call for a given (device, precision, devices, num_nodes, strategy),
    after resolving ``"auto"`` and the default precision, and returned from a cache after
    that, so a notebook that trains many models launches one Fabric per configuration.
    On CUDA, fp32 matrix products then use TF32 (``torch.set_float32_matmul_precision("high")``);
    cuDNN convolutions already do by default.

    Raises:
        CellreproError: an unknown device name.
    """
    from lightning_fabric import Fabric

    accelerator, default_devices = resolve_accelerator(device)
    devices = devices or default_devices
    precision = precision or default_precision(accelerator)
    key = (accelerator, precision, tuple(devices) if isinstance(devices, list) else devices, num_nodes, strategy)
    if key in _FABRICS:
        return _FABRICS[key]
    quiet_lightning()
    if accelerator == "cuda":
        torch.set_float32_matmul_precision("high")
    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                    precision=precision)
    fabric.launch()
    _FABRICS[key] = fabric
    log.info("made a Fabric: %s, %s on %s", accelerator, precision, fabric.device)
    return fabric


def adam(params: Iterable[Any], lr: float = 1e-3, **kwargs: Any) -> torch.optim.Adam:
    """``torch.optim.Adam``, fused (one kernel for all parameters) when this process trains on CUDA.

    The choice follows ``resolve_accelerator("auto")``: a process that sees a GPU trains there
    (``fit``'s default device), so its parameters are on CUDA by the first step. Pass
    ``fused=False`` to keep the default implementation.

    >>> adam(nn.Linear(2, 1).parameters(), lr=0.01).defaults["lr"]
    0.01
    """
    if "fused" not in kwargs and resolve_accelerator("auto")[0] == "cuda":
        kwargs["fused"] = True
    return torch.optim.Adam(params, lr=lr, **kwargs)


def unwrap(module: nn.Module) -> nn.Module:
    """The user's module inside a Fabric wrapper (the module itself when it is not wrapped)."""
    return getattr(module, "_original_module", module)


def uses_conv2d(module: nn.Module) -> bool:
    """Whether ``module`` holds a 2-D convolution (where channels_last can pay)."""
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in module.modules())


def release(*objects: nn.Module | torch.optim.Optimizer) -> None:
    """Move modules and optimizer states to the CPU, then return cached CUDA memory.

    Call it when a model is done with (after a fold), so the next one starts from an empty
    GPU. Fabric wrappers are looked through (the user's module is moved); optimizer state
    (Adam's moments) is moved too. Without CUDA only the moves happen.

    >>> net = nn.Linear(2, 1)
    >>> release(net)
    >>> net.weight.device.type
    'cpu'
    """
    for obj in objects:
        if isinstance(obj, torch.optim.Optimizer):
            opt = getattr(obj, "optimizer", obj)  # Fabric's optimizer wrapper
            for state in opt.state.values():
                for k, v in state.items():
                    if isinstance(v, torch.Tensor) and v.device.type != "cpu":
                        state[k] = v.to("cpu")
        elif isinstance(obj, nn.Module):
            unwrap(obj).to("cpu")
        else:
            raise CellreproError(f"release() takes modules and optimizers, got {type(obj).__name__}")
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
