"""``lkdetect learn``: keypoints from a folder of images in one resumable command.

Train LatentKeypointGAN on the images, choose a snapshot by label-free metrics, train the detector on its pairs, add
the flip pairing, export ONNX and write a report (stages and outputs in :mod:`lkdetect.learn.plan`). Modules:
``plan`` (settings, stages), ``estimate`` (the dry run's measured time), ``data`` (checking the folder),
``select`` (the snapshot rule), ``state`` (learn.json), ``stages`` (running and resuming), ``report`` and ``svg``.
This package is on lkdetect's training path: it imports ``gan``, and ``import lkdetect`` does not import it.
"""
