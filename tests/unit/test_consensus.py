"""Consensus of cluster ensembles: what the co-association linkage merges and which candidate wins."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from scatlas.partition import consensus_partition, ensemble_partition


def test_cells_join_the_group_that_most_partitions_put_them_in():
    # cell 2 sits with cells 0–1 in two partitions of three, cell 5 with cells 3–4 in two of three
    partitions = [[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1], [5, 5, 5, 7, 7, 9]]
    assert adjusted_rand_score([0, 0, 0, 1, 1, 1], consensus_partition(partitions, 2)) == 1.0


def test_identical_partitions_are_their_own_consensus():
    labels = np.random.default_rng(0).integers(0, 6, size=500)
    renamed = (labels + 3) % 6  # the same partition under other names
    for combine in (consensus_partition, ensemble_partition):
        assert adjusted_rand_score(labels, combine([labels, renamed, labels], 6)) == 1.0


def test_the_consensus_of_noisy_partitions_is_closer_to_the_truth_than_each():
    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(5), [400, 250, 150, 120, 80])
    noisy = []
    for _ in range(5):  # each partition moves 15 % of the cells to a random cluster
        labels = truth.copy()
        moved = rng.random(truth.size) < 0.15
        labels[moved] = rng.integers(0, 5, size=moved.sum())
        noisy.append(labels)
    consensus = ensemble_partition(noisy, 5)
    assert adjusted_rand_score(truth, consensus) > max(adjusted_rand_score(truth, p) for p in noisy) + 0.1


def test_a_split_made_by_one_partition_of_three_does_not_win():
    # deng_subset_133, scDMAC seed 0: two members agree on a 101-cell cluster (and disagree on which cells
    # are singletons); the third splits it 44 / 57. The co-association linkage keeps the split and absorbs
    # the singletons; the members' own vote prefers the partition the majority shares.
    combos = [
        ((0, 0, 1), 22),
        ((1, 1, 0), 42),
        ((1, 1, 3), 1),
        ((1, 2, 0), 57),
        ((1, 4, 0), 1),
        ((2, 3, 4), 8),
        ((3, 1, 2), 1),
        ((4, 1, 0), 1),
    ]
    labels = np.repeat([c for c, _ in combos], [n for _, n in combos], axis=0)
    members = [labels[:, j] for j in range(3)]
    co_association = consensus_partition(members, 5)
    assert sorted(np.bincount(co_association)) == [1, 8, 22, 44, 58]
    chosen = ensemble_partition(members, 5)
    assert adjusted_rand_score(members[0], chosen) == 1.0 or adjusted_rand_score(members[2], chosen) == 1.0


def test_fewer_label_combinations_than_clusters_gives_each_its_own():
    assert sorted(np.bincount(consensus_partition([[0, 0, 1, 1], [1, 1, 0, 0]], 3))) == [2, 2]
    with pytest.raises(ValueError, match="at least 1"):
        consensus_partition([[0, 1]], 0)
