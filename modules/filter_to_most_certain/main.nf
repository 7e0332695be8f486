process FILTER_TO_MOST_CERTAIN {
    tag "${meta.id}"
    label 'process_low'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(pseudolabels, stageAs: 'pseudolabels/*'), path(predictions, stageAs: 'predictions/*'), path(genome, stageAs: 'genome/*')

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    tuple val(meta), path("${prefix}.report.json"), emit: report
    tuple val("${task.process}"), val('filter-to-most-certain.py'), eval('filter-to-most-certain.py --version | cut -d" " -f2'), emit: versions_filter_to_most_certain, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}.filtered"
    """
    filter-to-most-certain.py \\
        --h5-to-filter ${pseudolabels} \\
        --predictions ${predictions} \\
        --test-data ${genome} \\
        --output-file ${prefix}.h5 \\
        --report ${prefix}.report.json \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}.filtered"
    """
    touch ${prefix}.h5
    touch ${prefix}.report.json
    """
}
