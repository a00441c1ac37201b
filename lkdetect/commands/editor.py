"""``lkdetect editor``: a local web app to edit generated images through their latent keypoints (CPU)."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--domain", default="faces", help="shipped weights to use: faces (default) or birds")
    p.add_argument(
        "--gan", default=None, metavar="WEIGHTS", help="GAN weights (safetensors) instead of the shipped ones"
    )
    p.add_argument(
        "--weights", default=None, metavar="PATH", help="detector weights instead of the shipped detector of --domain"
    )
    p.add_argument("--no-detector", action="store_true", help="do not load a keypoint detector")
    p.add_argument("--seed", type=int, default=0, help="seed of the first sample (default 0)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; the editor has no authentication)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def run(args: argparse.Namespace) -> int:
    import torch

    from lkdetect.demo import load_detector
    from lkdetect.editor.server import make_server
    from lkdetect.editor.session import Session, gan_identity
    from lkdetect.models import shipped_gan_path
    from lkdetect.training.gan_weights import load_gan

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    path = args.gan if args.gan is not None else shipped_gan_path(args.domain)
    generator, _ = load_gan(path)
    detect = None if args.no_detector else load_detector(args.weights, args.domain)
    session = Session(generator, gan_identity(path, None if args.gan else args.domain), detect, seed=args.seed)
    try:
        server = make_server(session, args.host, args.port)
    except OSError as e:
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    if not server.loopback:
        logger.warning("listening on %s: anyone who can reach it can use the editor (no authentication)", args.host)
    print(f"lkdetect editor: {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
