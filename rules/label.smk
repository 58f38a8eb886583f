rule ontology_download:
    output:
        "reference/ontology/{filename}",
    log:
        "logs/ontology_download/{filename}.log",
    conda:
        "../envs/scatlas.yaml"
    params:
        url=config["label"]["ontology"],
    script:
        "../scripts/reference_download.py"


rule label:
    input:
        ontology=ontology_source(),
    output:
        "labels/{study}.tsv",
    log:
        "logs/label/{study}.log",
    conda:
        "../envs/scatlas.yaml"
    params:
        samples=study_samples,
        scopes=config["label"]["synonym_scopes"],
        fields=config["label"]["fields"],
        exclude=config["label"]["exclude_terms"],
    script:
        "../scripts/label_study.py"
