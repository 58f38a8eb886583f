from _common import setup

log = setup(snakemake)

from scatlas.reference import install_hisat2_index  # noqa: E402

install_hisat2_index(snakemake.input[0], snakemake.params.prefix, md5=snakemake.params.md5)
