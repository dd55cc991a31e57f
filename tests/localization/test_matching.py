"""Cluster-to-class matching (evaluation only): Hungarian on co-occurrence, extra and empty clusters."""
import numpy as np

from mmlib.localization.matching import cooccurrence, match_clusters


def test_cooccurrence_by_hand():
    table = cooccurrence(np.array([0, 0, 1, 2]), np.array([1, 1, 0, 1]), num_clusters=3, num_classes=2)
    assert table.tolist() == [[0, 1, 0], [2, 0, 1]]


def test_a_permutation_is_recovered():
    labels = np.repeat(np.arange(4), 5)
    perm = np.array([2, 0, 3, 1])  # class c falls in cluster perm[c]
    assignment = match_clusters(perm[labels], labels, 4, 4)
    assert assignment[perm].tolist() == [0, 1, 2, 3]


def test_one_to_one_beats_greedy():
    # greedy (largest cell first) gives cluster 0 to class 0 (5) and then cluster 1 to class 1 (1): total 6;
    # the one-to-one optimum is cluster 0 -> class 1 (4) and cluster 1 -> class 0 (4): total 8
    clusters = np.array([0] * 5 + [1] * 4 + [0] * 4 + [1] * 1)
    labels = np.array([0] * 5 + [0] * 4 + [1] * 4 + [1] * 1)
    assert match_clusters(clusters, labels, 2, 2).tolist() == [1, 0]


def test_extra_clusters_take_their_majority_class_and_empty_ones_none():
    clusters = np.array([0, 0, 1, 1, 2, 2, 2])
    labels = np.array([0, 0, 1, 1, 1, 1, 0])
    # two classes, four clusters: 0 -> 0 and 1 or 2 -> 1 one-to-one; the other of 1, 2 joins its majority, 3 is empty
    assignment = match_clusters(clusters, labels, 4, 2)
    assert assignment[0] == 0 and assignment[1] == 1 and assignment[2] == 1 and assignment[3] == -1


def test_fewer_clusters_than_classes_leave_classes_without_a_cluster():
    assignment = match_clusters(np.array([0, 0, 1]), np.array([2, 2, 0]), 2, 3)
    assert assignment.tolist() == [2, 0]

