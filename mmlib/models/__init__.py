"""Encoders, fusion heads and the multimodal network."""
from ..registry import ENCODERS, FUSIONS
from . import encoders, fusion, resnet  # noqa: F401  (registration)
from .encoders import ConvEncoder, MLPEncoder, build_encoder, count_parameters
from .fusion import (ConcatFusion, ConfidenceFusion, EvidentialFusion, FiLMFusion, FusionHead, GatedFusion,
                     LateFusion, SumFusion)
from .net import MultimodalNet, Output, build_model
from .resnet import ResNet18

__all__ = ["ENCODERS", "FUSIONS", "ConcatFusion", "ConfidenceFusion", "ConvEncoder", "EvidentialFusion", "FiLMFusion",
           "FusionHead", "GatedFusion", "LateFusion", "MLPEncoder", "MultimodalNet", "Output", "ResNet18", "SumFusion",
           "build_encoder", "build_model", "count_parameters"]
