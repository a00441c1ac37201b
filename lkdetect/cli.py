"""The ``lkdetect`` command: every entry point of the project is a subcommand here.

Each subcommand lives in a module with ``add_arguments(parser)`` and ``run(args) -> int``; only the module of the
subcommand being run is imported (``lkdetect --help`` imports none), so parsing stays fast. The modules of the GAN
and benchmark tools are ``gan.*`` and ``evaluation.*`` themselves: their ``python -m`` forms are aliases.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand -> (module, help); each module has add_arguments(parser) and run(args) -> int
COMMANDS: dict[str, tuple[str, str]] = {
    "train-gan": ("lkdetect.commands.train_gan", "train LatentKeypointGAN on a folder of images"),
    "train-detector": ("lkdetect.commands.train_detector", "train the keypoint detector on pairs sampled from a GAN"),
    "learn": ("lkdetect.commands.learn", "from a folder of images to a keypoint detector, ONNX model and report"),
    "detect": ("lkdetect.commands.detect", "detect keypoints on images (annotated images, JSON)"),
    "eval": ("lkdetect.commands.eval", "score a detector on MAFL, CelebA in the wild, CUB-200-2011 or MTFL"),
    "video": ("lkdetect.commands.video", "detect keypoints in a video or camera stream (annotated video, JSON lines)"),
    "export": ("lkdetect.commands.export", "write detector weights as an ONNX model (onnxruntime deployment)"),
    "demo": ("lkdetect.commands.demo", "pictures of generated images, keypoints, edits and animations (index.html)"),
    "editor": ("lkdetect.commands.editor", "edit generated images in the browser: drag keypoints, exchange parts"),
    "add-flip": ("lkdetect.training.flip", "add the mirror pairing and upright reference to detector weights"),
    "keep-keypoints": ("lkdetect.training.keep_keypoints", "detector weights that output a subset of the keypoints"),
    "release-gan": ("gan.release", "write GAN release weights, samples and a model card from a train-gan run"),
    "gan-metrics": ("gan.metrics", "label-free swap metrics (and realism) of GAN release weights"),
    "gan-compare": ("gan.compare", "train-gan runs side by side at equal images: their logged label-free rows"),
    "train-cv": ("evaluation.train_cv", "cross-validate the landmark regression inside a benchmark's training split"),
    "equivariance": ("evaluation.equivariance", "label-free equivariance of a detector on a benchmark's real images"),
    "keypoint-parts": ("evaluation.keypoint_parts", "the annotated landmark each keypoint sits nearest to"),
    "gan-readability": ("evaluation.gan_readability", "how much of each GAN keypoint's position its image shows"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of ``command`` only (its module imported); the others list their help."""
    parser = argparse.ArgumentParser(
        prog="lkdetect", description="Unsupervised keypoint detection via LatentKeypointGAN"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)  # the only positional before it is none
    args = build_parser(command).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return importlib.import_module(args._module).run(args) or 0
    except (ValueError, TypeError, OSError, KeyError) as e:
        # Errors on user input (a CheckpointError is a ValueError): one clear line, no stack trace (use -v for one).
        if args.verbose:
            raise
        message = e.args[0] if isinstance(e, KeyError) and len(e.args) == 1 else e  # str(KeyError) adds quotes
        print(f"lkdetect {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
