"""Stages 1–3: the remote repositories (GEO, ArrayExpress, SRA/ENA) and downloads from them."""
