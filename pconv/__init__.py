"""pconv: image inpainting with partial convolutions (Liu et al., ECCV 2018)."""

from pconv import gan_pconv  # noqa: F401 (registers seed 002's generator, "gan-pconv")
from pconv.checkpoint import load_weights, read_metadata, save_model
from pconv.deepgin import DeepGIN, DeepGINConfig
from pconv.errors import CheckpointError, InputError, PConvError
from pconv.inpaint import inpaint, pick_device
from pconv.layer import PartialConv2d
from pconv.loader import load_model
from pconv.unet import PConvUNet, UNetConfig

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
