"""``import lkdetect`` and inference load neither gan, evaluation, onnxruntime nor cv2 (checked in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys

from lkdetect.network import KeypointNet
from lkdetect.weights import make_metadata, save_weights

HEAVY = ["gan", "evaluation", "onnxruntime", "cv2", "albumentations"]

SCRIPT = """
import json, sys
import lkdetect
after_import = sorted(m for m in {heavy} + ["lkdetect.detector", "torch"] if m in sys.modules)
from lkdetect import Detector, Keypoints
import numpy as np
det = Detector.load(sys.argv[1])
kp = det.detect(np.zeros((20, 30, 3), np.uint8))
det.detect_batch([np.zeros((20, 30), np.uint8)] * 2)
print(json.dumps({{"after_import": after_import, "after_detect": sorted(m for m in {heavy} if m in sys.modules),
                  "k": kp.xy.shape[0]}}))
"""


def test_inference_imports_stay_light(tmp_path):
    net = KeypointNet("mobilenetv3_small_100", 2, (32, 32), stride=8, upsample=2, head_channels=8, head_depth=1)
    path = tmp_path / "w.safetensors"
    save_weights(path, net.eval(), make_metadata(net))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(heavy=HEAVY), str(path)],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["after_import"] == []  # plain `import lkdetect` loads not even torch
    assert result["after_detect"] == [] and result["k"] == 2


def test_parsing_a_command_imports_only_its_module():
    """``lkdetect CMD ...`` imports the module of CMD only: parsing ``detect`` loads no gan, evaluation or torch.
    (Which modules may import gan at all is checked statically in tests/test_import_graph.py.)"""
    script = (
        "import json, sys\n"
        "from lkdetect.cli import build_parser\n"
        "build_parser('detect').parse_args(['detect', 'x.png'])\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('gan', 'evaluation', 'torch')\n"
        "    or m.startswith('lkdetect.commands.') and m != 'lkdetect.commands.detect')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
