"""The methods of the model stages, declared once.

A stage (``cluster`` today; ``impute`` and ``embed`` take the same form) lists its methods: the name users
give (``scatlas cluster --method``, the config's ``cluster.methods``), its kind, where its fit function and
its parameters live, and the package files its results depend on. The command line's choices, the
workflow's rules (which rule runs a method, which code edits rerun its jobs) and the benchmarks derive
from this table.

Fits and parameters are named ``"module:attribute"`` and imported only when a method runs, so that
listing the methods (``scatlas --help``, the Snakefile) imports neither torch nor scanpy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module

KINDS = ("deep", "baseline")


def _load(target: str):
    module, _, attribute = target.partition(":")
    return getattr(import_module(module), attribute)


@dataclass(frozen=True)
class Method:
    """One method of a stage.

    ``name``: as users write it. ``kind``: ``deep`` (trained networks; a GPU helps) or ``baseline``.
    ``summary``: one line for ``--help``. ``fit``: ``"module:function"``; a clustering method's is called as
    ``fit(counts, n_clusters, params, seed, device, gene_names)`` → (labels, embedding), with raw counts
    (cells × genes) and ``params`` an instance of ``params``: ``"module:Class"``, whose ``from_dict``
    refuses an unknown or mistyped value with a ``KeyError`` naming it. ``code``: the package files
    (relative to ``scatlas/``) its results depend on, besides those its stage's methods share.
    ``model`` (deep methods that save their fit): ``"module:Class"`` of the fitted model; its module's
    ``fit_model`` (same arguments as ``fit``) returns a :class:`~scatlas.models.base.FittedClustering`.
    """

    name: str
    kind: str
    summary: str
    fit: str
    params: str
    code: tuple[str, ...]
    model: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"method {self.name}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    def fit_function(self):
        """The fit function (imports its module)."""
        return _load(self.fit)

    def saves_model(self) -> bool:
        return bool(self.model)

    def model_class(self) -> type:
        """The class of the fitted model (imports its module); ``KeyError`` when the method saves none."""
        if not self.model:
            raise KeyError(f"{self.name} saves no model (a baseline: it is refitted in seconds)")
        return _load(self.model)

    def fit_model_function(self):
        """The fit function that keeps the fitted model (:meth:`model_class`'s module's ``fit_model``)."""
        self.model_class()
        return _load(f"{self.model.partition(':')[0]}:fit_model")

    def parameter_class(self) -> type:
        """The class of the method's parameters (imports its module)."""
        return _load(self.params)

    def parameters(self, values: Mapping):
        """The method's parameters from a mapping of name → value; ``KeyError`` names a bad one."""
        return self.parameter_class().from_dict(dict(values))


@dataclass(frozen=True)
class Stage:
    """A stage's methods, in the order users see them, and the package files all of them depend on."""

    name: str
    code: tuple[str, ...]
    methods: Mapping[str, Method]

    def names(self, kind: str | None = None) -> list[str]:
        """The methods' names, of one ``kind`` or of all."""
        return [method.name for method in self.methods.values() if kind in (None, method.kind)]

    def method(self, name: str) -> Method:
        """The method called ``name``; ``KeyError`` listing the choices when there is none."""
        try:
            return self.methods[name]
        except KeyError:
            raise KeyError(f"unknown {self.name} method {name!r}; choose from {', '.join(self.methods)}") from None

    def code_of(self, name: str) -> list[str]:
        """The package files (relative to ``scatlas/``) a method's results depend on."""
        return [*self.code, *self.method(name).code]

    def pattern(self, kind: str | None = None) -> str:
        """A regular expression matching the names of one ``kind`` of method (a wildcard constraint)."""
        return "|".join(map(re.escape, self.names(kind)))


def _stage(name: str, code: tuple[str, ...], *methods: Method) -> Stage:
    return Stage(name, code, {method.name: method for method in methods})


_DEEP_MODEL_CODE = (
    "models/base.py",
    "models/artefacts.py",
    "models/training.py",
    "nn/clustering.py",
    "nn/count_likelihood.py",
)

# The deep models estimate K with Leiden (scatlas/partition.py) only when it is not given, which the
# workflow never does: that file is not among their code unless they use it otherwise (scDMAC's consensus).
CLUSTERING = _stage(
    "cluster",
    ("cluster/__init__.py", "cluster/data.py", "preprocess/normalize.py", "params.py"),
    Method(
        "scdmac",
        "deep",
        "denoising + masking autoencoder (Xu et al. 2026)",
        fit="scatlas.models.scdmac:fit_clusters",
        params="scatlas.models.scdmac:ScdmacParams",
        code=("models/scdmac.py", "nn/scdmac.py", "partition.py", *_DEEP_MODEL_CODE),
        model="scatlas.models.scdmac:Scdmac",
    ),
    Method(
        "scsmd",
        "deep",
        "convolutional NB autoencoder with a multi-dilated attention gate + CellNet (Cui et al. 2025)",
        fit="scatlas.models.scsmd:fit_clusters",
        params="scatlas.models.scsmd:ScsmdParams",
        code=("models/scsmd.py", "nn/scsmd.py", *_DEEP_MODEL_CODE),
        model="scatlas.models.scsmd:Scsmd",
    ),
    Method(
        "pca-kmeans",
        "baseline",
        "scanpy baseline, K-means on the principal components",
        fit="scatlas.cluster.baselines:pca_kmeans",
        params="scatlas.cluster.baselines:PcaKmeansParams",
        code=("cluster/baselines.py",),
    ),
    Method(
        "leiden",
        "baseline",
        "scanpy baseline, Leiden on the principal components' kNN graph",
        fit="scatlas.cluster.baselines:leiden",
        params="scatlas.cluster.baselines:LeidenParams",
        code=("cluster/baselines.py", "partition.py"),
    ),
)

_IMPUTATION_BASELINE = "scatlas.impute.baselines"

# An imputation method's fit is called as fit(x, params, seed, device, reference) → the imputed matrix
# (cells × genes, dense, ln(1 + x) scale), x the log expression of a set (cells × genes, CSR; zeros
# unobserved), reference the same for a reference set over the same genes (translate only, else None).
IMPUTATION = _stage(
    "impute",
    ("impute/__init__.py", "preprocess/expression.py", "impute/benchmark.py", "preprocess/normalize.py", "params.py"),
    Method(
        "late",
        "deep",
        "LATE: autoencoder on ln(1 + x), loss on the observed entries only (Badsha et al. 2020)",
        fit="scatlas.models.late:fit_late",
        params="scatlas.models.late:LateParams",
        code=("models/late.py", "nn/late.py", "models/base.py", "models/training.py"),
    ),
    Method(
        "translate",
        "deep",
        "TRANSLATE: LATE trained on a reference, then fine-tuned on the target (Badsha et al. 2020)",
        fit="scatlas.models.late:fit_translate",
        params="scatlas.models.late:LateParams",
        code=("models/late.py", "nn/late.py", "models/base.py", "models/training.py"),
    ),
    *(
        Method(
            name,
            "baseline",
            summary,
            fit=f"{_IMPUTATION_BASELINE}:{fit}",
            params=f"{_IMPUTATION_BASELINE}:{params}",
            code=("impute/baselines.py",),
        )
        for name, summary, fit, params in (
            ("none", "no imputation: unobserved entries stay zero", "no_imputation", "NoParams"),
            ("gene_mean", "each gene's mean observed value", "gene_mean", "NoParams"),
            ("cell_gene_mean", "each cell's mean observed value plus the gene's offset", "cell_gene_mean", "NoParams"),
            ("knn", "mean over the 15 nearest cells in 50 principal components", "knn_smoothing", "KnnParams"),
            ("magic", "MAGIC (magic-impute), its defaults", "magic", "MagicParams"),
            ("alra", "ALRA-style thresholded low-rank approximation", "alra", "AlraParams"),
        )
    ),
)

STAGES = (CLUSTERING, IMPUTATION)

# An embedding method is trained by scatlas.embed.train_embedding(input, output, label_key, study_key, model, ...)
# (raw counts of labelled cells → a model folder with its ANN index); ``fit`` names the network's wrapper.
EMBEDDING = _stage(
    "embed",
    (
        "embed/__init__.py",
        "embed/split.py",
        "embed/similarity.py",
        "embed/metrics.py",
        "models/embed.py",
        "nn/embed.py",
        "models/training.py",
        "models/artefacts.py",
        "preprocess/expression.py",
        "preprocess/normalize.py",
        "ontology/similarity.py",
        "params.py",
    ),
    *(
        Method(
            name,
            "deep",
            summary,
            fit="scatlas.models.embed:Embedder",
            params="scatlas.models.embed:EmbedParams",
            code=(),
        )
        for name, summary in (
            ("dense", "scQuery dense 1136 → 100 tanh cell-type classifier, the last hidden layer the embedding"),
            ("siamese", "scQuery siamese network, contrastive loss (margin 1, optional ontology dynamic margin)"),
            ("triplet", "scQuery triplet network, batch-hard loss with the soft margin"),
        )
    ),
)
