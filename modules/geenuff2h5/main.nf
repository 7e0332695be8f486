process GEENUFF2H5 {
    tag "${meta.id}"
    label 'process_single'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(db)

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    tuple val("${task.process}"), val('geenuff2h5.py'), eval('geenuff2h5.py --version | cut -d" " -f2'), topic: versions, emit: versions_geenuff2h5


    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    geenuff2h5.py \\
        --input-db-path ${db} \\
        --h5-output-path ${prefix}.h5 \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.h5
    """
}
