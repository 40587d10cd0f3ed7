"""pconv: image inpainting with partial convolutions (Liu et al., ECCV 2018)."""

from pconv import archs  # noqa: F401 (every network folder registers itself)
from pconv.archs.deepgin import DeepGIN, DeepGINConfig
from pconv.archs.unet import PConvUNet, UNetConfig
from pconv.checkpoint import load_weights, read_metadata, save_model
from pconv.errors import CheckpointError, InputError, PConvError
from pconv.inpaint import inpaint, pick_device
from pconv.layer import PartialConv2d
from pconv.loader import load_model

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "DeepGIN",
    "DeepGINConfig",
    "InputError",
    "PConvError",
    "PConvUNet",
    "PartialConv2d",
    "UNetConfig",
    "inpaint",
    "load_model",
    "load_weights",
    "pick_device",
    "read_metadata",
    "save_model",
]
