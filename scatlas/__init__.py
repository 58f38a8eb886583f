"""scatlas: a uniformly processed single-cell RNA-seq atlas and the models trained on it."""

import os
import sys

__version__ = "0.1.0"

# numba's default threading layer, "omp", drives the libgomp that torch has loaded: its first parallel
# function (scanpy's highly variable genes, scaling, ...) sets that OpenMP pool to numba's thread count,
# every CPU of the machine, over OMP_NUM_THREADS, torch.set_num_threads and a job's threads. Torch then
# runs more threads than it was given (two processes of one thread each on 2 cores: 2 each, 3-5 times
# slower) and the same seed can give other numbers depending on what ran before. numba's own "workqueue"
# pool leaves torch's alone. A layer the user chose is kept.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
if "numba" in sys.modules:  # imported before scatlas: the layer is read at numba's first parallel call
    sys.modules["numba"].config.THREADING_LAYER = os.environ["NUMBA_THREADING_LAYER"]
