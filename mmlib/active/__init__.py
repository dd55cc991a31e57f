"""Multimodal cold-start active learning (MMCSAL): which unlabelled pairs to label first.

Not a training method: a pipeline that runs before (and around) ``fit``.

1. **Stage 1** (``pretraining.py``, ``model.py``, ``contrastive.py``): self-supervised training of a
   two-stream network on the unlabelled pool, through ``fit`` with the ``cross-modal`` task:
   cross-modal InfoNCE, plus uni-modal prototypes. ``gap.py`` measures the modality gap.
2. **Stage 2** (``selection/``): selectors behind one interface and the ``SELECTORS`` registry
   pick B pool pairs from the Stage-1 embeddings (random, k-means, k-center, single-modality,
   MMCSAL and its ablations).
3. **Evaluation** (``evaluate.py``): label the selection, train the standard classifier with
   ``mm.run``, report test accuracy against the budget.

Which parts are the paper's and which are our engineering reading is stated in each module.

Reference: shen2024mmcsal; notebook ``notebooks/mmcsal.ipynb``.
"""
from . import contrastive, evaluate, gap, model, pretraining, selection
from .evaluate import labelled_subset, make_selector, select_and_train
from .model import TwoStreamNet
from .pretraining import CrossModalPretraining, diagnostics, embed, embeddings_by_seed, pretrain
from .selection import Selector

__all__ = ["CrossModalPretraining", "Selector", "TwoStreamNet", "contrastive", "diagnostics", "embed",
           "embeddings_by_seed", "evaluate", "gap",
           "labelled_subset", "make_selector", "model", "pretrain", "pretraining", "select_and_train",
           "selection"]
