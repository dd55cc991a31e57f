"""Cluster-to-class matching, for evaluation only.

The method never sees a label: its dictionary entries and classifier outputs are cluster
indices. To score class-aware maps against class-labelled boxes, each cluster is given a class
from the co-occurrence matrix ``N[c, k]`` = the number of evaluation samples of class c
predicted as cluster k. hu2021csol's script searches 10^6 random assignments and asks for a
manual one-to-one check (and hard-codes 20 clusters while training uses 11; spec §9.5); we use
the Hungarian algorithm, which finds the one-to-one matching of largest total co-occurrence
exactly. With more clusters than classes, the clusters left over go to their most frequent
class (their maps are then summed, ``maps.cluster_to_class``); with fewer, some classes get no
cluster (their maps are zero).

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def cooccurrence(clusters: np.ndarray, labels: np.ndarray, num_clusters: int, num_classes: int) -> np.ndarray:
    """``N[c, k]``: how many samples of class c fall in cluster k; (num_classes, num_clusters) int."""
    table = np.zeros((num_classes, num_clusters), dtype=np.int64)
    np.add.at(table, (np.asarray(labels), np.asarray(clusters)), 1)
    return table


def match_clusters(clusters: np.ndarray, labels: np.ndarray, num_clusters: int, num_classes: int) -> np.ndarray:
    """The class of every cluster, (num_clusters,) int: a one-to-one Hungarian matching on co-occurrence.

    Clusters beyond the matching take their most frequent class; a cluster that no sample
    falls in takes -1 (unused), so its map counts for no class.
    """
    table = cooccurrence(clusters, labels, num_clusters, num_classes)
    rows, cols = linear_sum_assignment(table, maximize=True)
    assignment = np.full(num_clusters, -1, dtype=np.int64)
    assignment[cols] = rows
    for k in np.flatnonzero(assignment < 0):
        if table[:, k].sum() > 0:
            assignment[k] = int(table[:, k].argmax())
    return assignment

