"""LatentKeypointGAN (He, Wandt, Rhodin, arXiv 2103.15812): a GAN that generates images together with K latent
keypoints and per-keypoint appearance embeddings. This package imports nothing else of lkdetect."""

from .checkpoint import CheckpointError, load_generator, save_generator
from .config import PRESETS, GANConfig, ModelConfig, TrainConfig, get_config
from .generator import Generator, Latents
from .sampling import Samples, sample

__all__ = [
    "PRESETS",
    "CheckpointError",
    "GANConfig",
    "Generator",
    "Latents",
    "ModelConfig",
    "Samples",
    "TrainConfig",
    "get_config",
    "load_generator",
    "sample",
    "save_generator",
]
