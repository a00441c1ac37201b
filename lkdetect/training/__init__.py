"""Training the keypoint detector on (image, keypoints) pairs sampled from LatentKeypointGAN (He, Wandt, Rhodin,
arXiv 2103.15812). The training path of lkdetect: with the demo and the editor, the only part that imports ``gan``.

- :mod:`~lkdetect.training.config`: presets and ``--set`` overrides of a detector run (frozen dataclasses);
- :mod:`~lkdetect.training.gan_weights`: loading GAN release weights (errors that are lkdetect's and gan's);
- :mod:`~lkdetect.training.pairs`: deterministic GAN pairs at the detector's input size;
- :mod:`~lkdetect.training.augment`: the geometric and photometric augmentation of a batch;
- :mod:`~lkdetect.training.pseudo_labels`: teacher keypoints on unlabelled real images (self-training);
- :mod:`~lkdetect.training.flip`: the keypoints' flip permutation for mirrored test-time augmentation;
- :mod:`~lkdetect.training.trainer`: the loss, the loop, checkpoints and release weights.
"""
