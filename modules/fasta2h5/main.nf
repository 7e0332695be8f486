process FASTA2H5 {
    tag "${meta.id}"
    label 'process_low'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(fasta)

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    tuple val("${task.process}"), val('fasta2h5.py'), eval('fasta2h5.py --version | cut -d" " -f2'), emit: versions_fasta2h5, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    HELIXTUNE_THREADS=${task.cpus} fasta2h5.py \\
        --fasta-path ${fasta} \\
        --species ${meta.id} \\
        --h5-output-path ${prefix}.h5 \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.h5
    """
}
