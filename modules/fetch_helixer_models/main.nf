process FETCH_HELIXER_MODELS {
    tag "${meta.id}"
    label 'process_single'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), val(lineage)

    output:
    tuple val(meta), path("${prefix}.h5"), emit: model
    tuple val("${task.process}"), val('fetch_helixer_models.py'), eval('fetch_helixer_models.py --version | cut -d" " -f2'), emit: versions_fetch_helixer_models, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    // ext.args: --mirror DIR|URL or --model-list PATH|URL for sites without internet access;
    // --custom-path DIR (after the one below, so it wins) keeps the downloads between runs.
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    fetch_helixer_models.py \\
        --lineage ${lineage} \\
        --custom-path models \\
        ${args}
    cp "\$(fetch_helixer_models.py --lineage ${lineage} --custom-path models ${args} --path)" ${prefix}.h5
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.h5
    """
}
