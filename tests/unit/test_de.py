"""Differential expression: SCDE pieces against hand-computed values, the meta-analysis, real data."""

import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED
from scipy import sparse, stats

from scatlas.cli import main
from scatlas.de import DEParams, combine_studies, differential_expression, safe_file_name
from scatlas.de.scde import (
    ErrorModels,
    cell_log_posteriors,
    corrected_z,
    difference_posterior,
    difference_z,
    group_posterior,
    mixture_logpmf,
    scde_test,
    summarise_difference,
)
from scatlas.de.simulate import simulate_de

KANG = SHARED / "data" / "benchmarks" / "pbmc_ifnb_kang_2800.h5ad"


def test_mixture_likelihood_by_hand():
    # (1-π)·NB(r; μ=2, θ=1) + π·Poisson(r; 0.1): NB(0) = (1/3)^1, NB(3) = (1/3)·(2/3)^3 = 8/81.
    r, mu, pi, theta = np.array([0.0, 3.0]), np.array([2.0, 2.0]), np.array([0.3, 0.3]), np.array([1.0, 1.0])
    expected = [0.7 / 3 + 0.3 * math.exp(-0.1), 0.7 * 8 / 81 + 0.3 * math.exp(-0.1) * 0.1**3 / 6]
    assert np.exp(mixture_logpmf(r, mu, pi, theta)) == pytest.approx(expected, rel=1e-12)


def test_magnitude_zero_takes_the_drop_out_probability_in_the_limit():
    # At magnitude 0 the NB mean is 0, so a count of 1 there can only be a drop-out, with π's limit
    # at log e = -inf. Cell 0: π = expit(5 - 0.01·(log e)²) is ~0.99 on the whole grid but tends to
    # 0: one read rules magnitude 0 out. Cell 1: π = expit(-5 + 0.01·(log e)²) tends to 1: at
    # magnitude 0 the read is a drop-out, P = Poisson(1; 0.1), far likelier than the NB at the next
    # grid point. θ = 1 everywhere (B = T = 0), a = 0.01.
    grid = np.linspace(0.0, 3.0, 301)
    models = ErrorModels(
        np.array([[5.0, 0.0, -0.01], [-5.0, 0.0, 0.01]]),
        np.log([0.01, 0.01]),
        np.array([[0.0, 0.0, 0.0, -1.0, 0.5]] * 2),
    )
    assert models.failure_probability(np.full((2, 1), -np.inf)).ravel().tolist() == [0.0, 1.0]
    table, index = cell_log_posteriors(models, np.array([[1], [1]]), grid)
    post = np.exp(table[index[:, 0]].astype(np.float64))  # (cells, grid)
    assert post[0, 0] < 1e-12 * post[0, 1]
    log_e1 = math.log(10 ** grid[1] - 1)
    mu1, pi1, drop = 0.01 * (10 ** grid[1] - 1), 1 / (1 + math.exp(5 - 0.01 * log_e1**2)), 0.1 * math.exp(-0.1)
    expected = drop / ((1 - pi1) * mu1 / (1 + mu1) ** 2 + pi1 * drop)  # NB(1; μ, θ=1) = μ / (1 + μ)²
    assert post[1, 0] / post[1, 1] == pytest.approx(expected, rel=1e-4)


def test_group_posterior_is_the_normalised_product_and_bootstrap_rows_sum_to_one():
    table = np.log(np.array([[0.5, 0.5, 1e-300], [0.2, 0.3, 0.5]])).astype(np.float32)
    index = np.array([[0], [1]])  # two cells, one gene
    plain = group_posterior(table, index, n_bootstrap=0, rng=np.random.default_rng(0))
    assert plain[0] == pytest.approx([0.4, 0.6, 0.0], abs=1e-6)  # (0.1, 0.15, 0) / 0.25
    boot = group_posterior(table, index, n_bootstrap=20, rng=np.random.default_rng(0))
    assert boot.sum(1) == pytest.approx([1.0]) and np.all(boot >= 0)


def test_difference_distribution_by_hand():
    flat = np.ones(3) / 3
    # first group at grid point 1 or 0 (equal odds), second at point 1: Δ = -1 or 0 steps.
    diff = difference_posterior(np.array([[0.5, 0.5, 0.0]]), np.array([[0.0, 1.0, 0.0]]), flat)
    assert diff[0] == pytest.approx([0, 0.5, 0.5, 0, 0], abs=1e-12)  # offsets -2..2
    # a prior that favours point 0 halves the weight of point 1 in the first group: (2/3, 1/3).
    diff = difference_posterior(np.array([[0.5, 0.5, 0.0]]), np.array([[0.0, 1.0, 0.0]]), np.array([0.5, 0.25, 0.25]))
    assert diff[0] == pytest.approx([0, 2 / 3, 1 / 3, 0, 0], abs=1e-12)


def test_z_and_summaries_from_the_difference_posterior():
    # P(Δ<0) = 0.025, P(Δ=0) = 0: Z = Φ⁻¹(0.975) = 1.96 (higher in the first group); mirrored: -1.96.
    up = np.array([[0.025, 0.0, 0.975]])
    assert difference_z(up)[0] == pytest.approx(1.959964, abs=1e-4)
    assert difference_z(up[:, ::-1])[0] == pytest.approx(-1.959964, abs=1e-4)
    assert difference_z(np.array([[0.25, 0.5, 0.25]]))[0] == pytest.approx(0.0, abs=1e-9)
    step = math.log10(2)  # one grid step = one log2 unit
    summary = summarise_difference(np.array([[0.0, 0.02, 0.1, 0.8, 0.08]]), step).iloc[0]
    assert summary["mle"] == pytest.approx(1.0)  # offsets -2..2, the peak at +1
    assert summary["lb"] == pytest.approx(-1.0) and summary["ub"] == pytest.approx(2.0)  # cdf 0.02 < 0.025
    assert summary["ce"] == 0.0  # the 95 % interval contains 0
    # BH over three genes: p = (0.001, 0.01, 0.5) -> (0.003, 0.015, 0.5); cZ keeps Z's sign.
    z = -stats.norm.isf([0.001, 0.01, 0.5]) * np.array([1, -1, 1])
    cz, p_adj = corrected_z(z)
    assert stats.norm.sf(np.abs(cz)) == pytest.approx([0.003, 0.015, 0.5])
    assert np.sign(cz[:2]).tolist() == [-1, 1] and p_adj[:2] == pytest.approx([0.006, 0.03])


def test_scde_finds_a_strong_shift_with_the_right_sign_and_not_a_null_gene():
    rng = np.random.default_rng(3)
    means = np.exp(rng.normal(2, 1, 300))
    first = rng.poisson(np.tile(means, (40, 1)) * rng.gamma(2, 0.5, (40, 300)))
    second = rng.poisson(np.tile(means, (40, 1)) * rng.gamma(2, 0.5, (40, 300)))
    first[:, 0] = rng.poisson(200, 40)  # gene 0: ~200 counts in the first group
    second[:, 0] = rng.poisson(5, 40)  # ... and ~5 in the second: log2 fold change ~5.3
    second[:, 1] = rng.poisson(200, 40)  # gene 1: the other way round
    first[:, 1] = rng.poisson(5, 40)
    result = scde_test(first, second, seed=0, n_bootstrap=30)
    assert result.loc[0, "p_adj"] < 1e-3 and result.loc[0, "z"] > 3 and 4 < result.loc[0, "mle"] < 7
    assert result.loc[1, "p_adj"] < 1e-3 and result.loc[1, "z"] < -3 and result.loc[1, "mle"] < -4
    assert (result["p_adj"].iloc[2:] < 0.05).mean() < 0.05  # the unchanged genes
    again = scde_test(first, second, seed=0, n_bootstrap=30)
    pd.testing.assert_frame_equal(result, again)


def test_meta_analysis_needs_every_study_and_the_same_sign():
    genes = pd.Index(["both_up", "flips", "weak", "both_down"])
    a = pd.DataFrame({"log2fc": [2.0, 1.0, 3.0, -1.0], "z": [4, 3, 3, -3.0], "p_adj": [0.01, 0.001, 0.2, 0.02]}, genes)
    b = pd.DataFrame(
        {"log2fc": [1.0, -1.0, 3.0, -3.0], "z": [3, -3, 3, -4.0], "p_adj": [0.03, 0.001, 0.01, 0.01]}, genes
    )
    table = combine_studies({"s1": a, "s2": b}, fdr=0.05).set_index("gene")
    assert table["significant"].to_dict() == {"both_up": True, "flips": False, "weak": False, "both_down": True}
    assert table.loc["both_up", "log2fc"] == 1.5 and table.loc["both_up", "p_adj_max"] == 0.03
    assert table.loc["both_up", "z"] == 3 and table.loc["both_down", "z"] == -3  # the weakest study's Z
    assert table.loc["flips", "z"] == 0  # Z = 3 and -3: no evidence of a change in one direction
    assert (table["n_studies"] == 2).all()


def test_small_studies_are_skipped_and_reported_and_names_are_safe(tmp_path):
    adata = simulate_de(n_studies=2, n_types=2, cells_per_type=40, n_genes=150, n_de=20, seed=2)
    adata.obs["label"] = adata.obs["label"].map({"type_0": "../B cell/x", "type_1": "type_1"})
    small = adata[
        ~((adata.obs["study"] == "study_1") & (adata.obs["label"] == "type_1")) | (np.arange(adata.n_obs) % 4 == 0)
    ].copy()
    path = tmp_path / "in.h5ad"
    small.write_h5ad(path)
    out = tmp_path / "de"
    assert (
        main(
            [
                "de",
                "--input",
                str(path),
                "--group-key",
                "label",
                "--study-key",
                "study",
                "--method",
                "wilcoxon",
                "--min-cells",
                "30",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["B_cell_x.tsv", "_index.tsv", "type_1.tsv"]
    index = pd.read_csv(out / "_index.tsv", sep="\t").set_index(["cell_type", "study"])
    assert not index.loc[("type_1", "study_1"), "used"]
    assert index.loc[("type_1", "study_1"), "reason"] == "10 cells < min_cells 30"
    table = pd.read_csv(out / "type_1.tsv", sep="\t")
    assert list(table.columns) == ["gene", "log2fc", "p_adj_max", "z", "n_studies", "significant"]
    assert (table["n_studies"] == 1).all()
    assert safe_file_name("..") == "cell_type" and "/" not in safe_file_name("a/../../b")


def test_non_integer_counts_are_refused_with_the_file_named(tmp_path, capsys):
    adata = simulate_de(n_studies=1, n_types=2, cells_per_type=10, n_genes=20, n_de=4, seed=0)
    adata.X = sparse.csr_matrix(np.log1p(adata.X.toarray()))
    path = tmp_path / "lognorm.h5ad"
    adata.write_h5ad(path)
    assert (
        main(
            [
                "de",
                "--input",
                str(path),
                "--group-key",
                "label",
                "--study-key",
                "study",
                "--output",
                str(tmp_path / "de"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"scatlas de: error: {path}: X holds non-integer values") and "\n" not in err
    assert not (tmp_path / "de").exists()


def test_raw_counts_are_taken_from_raw_when_x_is_normalised(tmp_path):
    # CELLxGENE's layout: X = log values of some genes, raw.X = the counts of every gene
    adata = simulate_de(n_studies=1, n_types=2, cells_per_type=40, n_genes=30, n_de=6, seed=0)
    adata.raw = adata.copy()
    adata.X = sparse.csr_matrix(np.log1p(adata.X.toarray()))
    path = tmp_path / "cellxgene.h5ad"
    adata[:, :10].copy().write_h5ad(path)
    assert (
        main(
            [
                "de",
                "--input",
                str(path),
                "--group-key",
                "label",
                "--study-key",
                "study",
                "--method",
                "wilcoxon",
                "--min-cells",
                "30",
                "--output",
                str(tmp_path / "de"),
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "de" / "type_0.tsv", sep="\t")
    assert sorted(table["gene"]) == sorted(adata.var_names)  # all 30 genes of raw, not X's 10


@pytest.fixture(scope="module")
def kang_monocytes():
    if not KANG.exists():
        pytest.fail(f"shared benchmark data not found at {KANG} (set SCATLAS_SHARED)")
    adata = ad.read_h5ad(KANG)
    adata = adata[adata.obs["label"] == "CD14 Mono"].copy()
    return adata[:, np.asarray((adata.X > 0).sum(0)).ravel() >= 40].copy()


@pytest.mark.parametrize("method", ["scde", "wilcoxon"])  # pydeseq2: benchmarks/de.py (~1 min here)
def test_interferon_genes_are_up_in_stimulated_monocytes(kang_monocytes, method):
    # Kang et al. 2018: IFN-β stimulation (STIM) induces the interferon-stimulated genes.
    params = DEParams(method=method, n_bootstrap=50)
    tables, _ = differential_expression(kang_monocytes, "condition", "label", params)
    stim = tables["STIM"].set_index("gene")
    for gene in ("ISG15", "IFI6", "IFIT1"):
        assert stim.loc[gene, "significant"] and stim.loc[gene, "log2fc"] > 1 and stim.loc[gene, "z"] > 0, gene
    assert tables["CTRL"].set_index("gene").loc["ISG15", "log2fc"] < -1  # the same gene, seen from CTRL
    assert set(stim.index[:20]) & {"ISG15", "IFI6", "IFIT1", "IFIT3", "MX1", "RSAD2", "ISG20", "IFITM3"}
