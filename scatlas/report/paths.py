"""Where the report reads what other stages write (no heavy imports: the Snakefile imports this)."""


def embedding_predictions(dataset: str = "atlas", model: str = "dense", seed: int = 0) -> str:
    """The embedding stage's held-out query predictions for ``dataset``, ``model`` and ``seed`` (TSV ``cell``,
    ``predicted``, ``truth``), which the report's mapping figure reads."""
    return f"results/embed/{dataset}/{model}/seed{seed}/query_predictions.tsv"
