"""Small good inputs of every kind the commands read, and the bad ones the robustness cases derive from them."""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd

GTF = (
    '{chrom}\ttest\texon\t101\t300\t.\t+\t.\tgene_id "g1"; gene_name "A"; gene_biotype "protein_coding";\n'
    '{chrom}\ttest\texon\t401\t600\t.\t+\t.\tgene_id "g1"; gene_name "A"; gene_biotype "protein_coding";\n'
    '{chrom}\ttest\texon\t701\t900\t.\t-\t.\tgene_id "g2"; gene_name "B"; gene_biotype "protein_coding";\n'
)
FASTA = ">chr1\n" + "ACGTTGCA" * 125 + "\n"
FASTQ = "".join(f"@r{i}\n{'ACGT' * 10}\n+\n{'I' * 40}\n" for i in range(4))


def gtf(chrom: str = "chr1") -> str:
    return GTF.format(chrom=chrom)


def sam(chrom: str = "chr1", n: int = 6) -> str:
    """A SAM of ``n`` 40 bp reads inside gene g1's first exon."""
    lines = [f"@HD\tVN:1.6\tSO:unsorted\n@SQ\tSN:{chrom}\tLN:1000\n"]
    lines += [f"r{i}\t0\t{chrom}\t{120 + i}\t60\t40M\t*\t0\t0\t{'ACGT' * 10}\t{'I' * 40}\n" for i in range(n)]
    return "".join(lines)


def gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def counts_h5ad(
    n_cells: int = 40, transform: Callable[[np.ndarray], np.ndarray] | None = None, **obs_changes
) -> Callable[[Path], None]:
    """A writer of an h5ad of Poisson counts (cells × 30 genes), obs ``label`` and ``study``; ``transform``
    changes the matrix (negative, normalised ...), ``obs_changes`` replace obs columns (None drops one)."""

    def write(path: Path) -> None:
        import anndata as ad

        rng = np.random.default_rng(0)
        x = rng.poisson(3, size=(n_cells, 30)).astype(np.float32)
        x = transform(x) if transform else x
        obs = pd.DataFrame(
            {
                "label": np.where(np.arange(n_cells) % 2, "a", "b"),
                "study": np.where(np.arange(n_cells) % 4 < 2, "s1", "s2"),
            },
            index=[f"c{i}" for i in range(n_cells)],
        )
        for column, values in obs_changes.items():
            if values is None:
                obs = obs.drop(columns=column)
            else:
                obs[column] = values
        ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(30)])).write_h5ad(path)

    return write


def not_anndata_h5(path: Path) -> None:
    import h5py

    with h5py.File(path, "w") as handle:
        handle["x"] = np.arange(3)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``scatlas ARGV`` in this process: (exit status, stdout, stderr)."""
    from scatlas.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 1
    sys.stdout.flush()
    return status, out.getvalue(), err.getvalue()


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones included) with a file's bytes: what a run must leave as it was."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}
