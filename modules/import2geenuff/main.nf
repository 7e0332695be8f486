process IMPORT2GEENUFF {
    tag "${meta.id}"
    label 'process_single'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(gff3), path(fasta)

    output:
    tuple val(meta), path("${prefix}.sqlite3"), emit: db
    tuple val(meta), path("${prefix}.import.log"), emit: log
    tuple val("${task.process}"), val('import2geenuff.py'), eval('import2geenuff.py --version | cut -d" " -f2'), topic: versions, emit: versions_import2geenuff


    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    import2geenuff.py \\
        --gff3 ${gff3} \\
        --fasta ${fasta} \\
        --species ${meta.id} \\
        --db-path ${prefix}.sqlite3 \\
        --log-file ${prefix}.import.log \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.sqlite3
    touch ${prefix}.import.log
    """
}
