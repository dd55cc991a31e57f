"""``av-digits``: a synthetic audio-visual dataset, generated deterministically from a seed.

Each sample of class c has
* a **visual** frame: one of scikit-learn's bundled 8x8 handwritten images of digit c,
  placed at a random position in a ``frame_size`` x ``frame_size`` frame, with Gaussian
  pixel noise of std ``visual_noise``;
* an **audio** clip: a harmonic tone whose fundamental encodes c (classes one
  ``semitones`` apart, jittered by ``pitch_jitter`` semitones), with random phase, a random
  loudness and white background noise of std ``audio_noise``; the model sees its
  log-magnitude spectrogram (``torch.stft``).

A fraction ``audio_missing`` (``visual_missing``) of samples carries no class evidence in
that modality: the tone (digit) is absent and only noise remains. The two fractions are
drawn independently, so the modalities are complementary. The defaults make audio the
information-sufficient, quickly learned (dominant) modality and vision the insufficient
one (the dataset's ``weak`` modality), as on CREMA-D. The base images are split into
train / val / test before any sample is generated, so no image appears in two splits.

Reference: notebook ``notebooks/imbalance.ipynb``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.datasets import load_digits

from ..checks import check_int, check_real, check_split
from ..registry import DATASETS
from .base import MultimodalDataset, Split, stratified_split


def _check_fraction(name: str, value: float) -> None:
    check_real(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")


def render_frames(images: np.ndarray, frame_size: int, noise: float, present: np.ndarray,
                  rng: np.random.Generator) -> torch.Tensor:
    """Place 8x8 images at random offsets in noisy frames; (N, 1, frame_size, frame_size)."""
    n = len(images)
    if frame_size < 8:
        raise ValueError(f"frame_size must be >= 8 (the digits are 8x8), got {frame_size}")
    frames = np.zeros((n, frame_size, frame_size), dtype=np.float32)
    off = rng.integers(0, frame_size - 8 + 1, size=(n, 2))
    rows = off[:, 0, None, None] + np.arange(8)[None, :, None]
    cols = off[:, 1, None, None] + np.arange(8)[None, None, :]
    frames[np.arange(n)[:, None, None], rows, cols] = images.reshape(n, 8, 8) / 16.0 * present[:, None, None]
    frames += rng.normal(0.0, noise, size=frames.shape).astype(np.float32)
    return torch.from_numpy(frames).unsqueeze(1)


def synthesize_audio(labels: np.ndarray, present: np.ndarray, rng: np.random.Generator, *,
                     sample_rate: int, duration: float, base_hz: float, semitones: float,
                     pitch_jitter: float, noise: float, harmonics: int = 3) -> torch.Tensor:
    """Harmonic tones (class -> fundamental) plus white noise; waveforms (N, L)."""
    n, length = len(labels), int(sample_rate * duration)
    t = torch.arange(length, dtype=torch.float64) / sample_rate
    pitch = labels * semitones + rng.normal(0.0, pitch_jitter, size=n)
    f0 = torch.from_numpy(base_hz * 2.0 ** (pitch / 12.0))
    loud = torch.from_numpy(rng.uniform(0.5, 1.0, size=n) * present)
    wave = torch.zeros(n, length, dtype=torch.float64)
    for h in range(1, harmonics + 1):
        phase = torch.from_numpy(rng.uniform(0, 2 * math.pi, size=n))
        wave += (loud / h)[:, None] * torch.sin(2 * math.pi * h * f0[:, None] * t[None] + phase[:, None])
    wave += torch.from_numpy(rng.normal(0.0, noise, size=(n, length)))
    return wave.float()


def log_spectrogram(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """log(|STFT| + 1e-3), shape (N, 1, n_fft // 2 + 1, frames)."""
    spec = torch.stft(wave, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft),
                      center=True, return_complex=True)
    return torch.log(spec.abs() + 1e-3).unsqueeze(1)


@DATASETS.register("av-digits")
def load_av_digits(n_samples: int = 2000, data_seed: int = 0, frame_size: int = 12,
                   visual_noise: float = 0.2, visual_missing: float = 0.1,
                   audio_noise: float = 0.4, audio_missing: float = 0.2, pitch_jitter: float = 0.3,
                   semitones: float = 2.0, base_hz: float = 300.0, sample_rate: int = 8000,
                   duration: float = 0.128, n_fft: int = 128, hop: int = 64,
                   split: tuple[float, float, float] = (0.6, 0.2, 0.2), width: int = 8,
                   feat_dim: int = 32) -> MultimodalDataset:
    """Generate the dataset; the same arguments always give the same tensors.

    Args:
        n_samples: total over the three splits, divided by ``split`` (each split has at least
            10 samples and draws from its own base images).
        data_seed: seeds the split and every random draw of the generator.
        width, feat_dim: channels and output size of the default CNN encoders.
    """
    for name, value in (("visual_missing", visual_missing), ("audio_missing", audio_missing)):
        _check_fraction(name, value)
    check_int("n_samples", n_samples)
    if n_samples < 30:
        raise ValueError(f"n_samples must be at least 30 (3 splits x 10 classes), got {n_samples}")
    check_int("data_seed", data_seed, low=0)
    check_int("frame_size", frame_size, low=8, why=" (the digits are 8x8)")
    for name, value in (("visual_noise", visual_noise), ("audio_noise", audio_noise),
                        ("pitch_jitter", pitch_jitter)):
        check_real(name, value, low=0)
    for name, value in (("semitones", semitones), ("base_hz", base_hz), ("duration", duration)):
        check_real(name, value, low=0, low_open=True)
    for name, value in (("sample_rate", sample_rate), ("hop", hop), ("width", width), ("feat_dim", feat_dim)):
        check_int(name, value, low=1)
    check_int("n_fft", n_fft, low=2)
    if n_fft // 2 >= int(sample_rate * duration):
        raise ValueError(f"n_fft must be below twice the clip length (sample_rate x duration = "
                         f"{int(sample_rate * duration)} samples), got {n_fft}")
    check_split(split)
    digits = load_digits()
    images, labels = digits.images.astype(np.float32), digits.target.astype(np.int64)
    rng = np.random.default_rng(data_seed)
    parts = stratified_split(labels, split, data_seed)
    splits = []
    for part, frac in zip(parts, split):
        n = max(10, int(round(n_samples * frac)))
        pick = rng.choice(part, size=n, replace=n > len(part))
        y = labels[pick]
        vis_present = (rng.random(n) >= visual_missing).astype(np.float32)
        aud_present = (rng.random(n) >= audio_missing).astype(np.float32)
        visual = render_frames(images[pick], frame_size, visual_noise, vis_present, rng)
        wave = synthesize_audio(y, aud_present, rng, sample_rate=sample_rate, duration=duration,
                                base_hz=base_hz, semitones=semitones, pitch_jitter=pitch_jitter,
                                noise=audio_noise)
        audio = log_spectrogram(wave, n_fft, hop)
        splits.append(Split({"audio": audio, "visual": visual}, torch.from_numpy(y)))
    train, val, test = splits
    # the floor keeps silent audio (audio_missing=1, audio_noise=0) finite; it never binds otherwise
    mu, sd = train.inputs["audio"].mean(), train.inputs["audio"].std().clamp_min(1e-6)
    for s in splits:
        s.inputs["audio"] = (s.inputs["audio"] - mu) / sd
    encoders = {m: ("cnn", {"in_channels": 1, "width": width, "out_dim": feat_dim}) for m in ("audio", "visual")}
    info = {"source": "generated from scikit-learn's digits images and synthetic tones", "data_seed": data_seed,
            "visual_noise": visual_noise, "visual_missing": visual_missing, "audio_noise": audio_noise,
            "audio_missing": audio_missing, "pitch_jitter": pitch_jitter}
    return MultimodalDataset("av-digits", ("audio", "visual"), 10, train, val, test, encoders,
                             [str(c) for c in range(10)], info, weak="visual")
