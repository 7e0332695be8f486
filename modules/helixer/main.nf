process HELIXER {
    tag "${meta.id}"
    label 'process_high'
    label 'process_gpu'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(fasta)
    path(model)

    output:
    tuple val(meta), path("${prefix}.gff3"), emit: gff3
    tuple val("${task.process}"), val('Helixer.py'), eval('Helixer.py --version | cut -d" " -f2'), emit: versions_helixer, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    def model_arg = model ? "--model-filepath ${model}" : ''
    """
    Helixer.py \\
        --fasta-path ${fasta} \\
        --species ${meta.id} \\
        ${model_arg} \\
        --threads ${task.cpus} \\
        --temporary-dir . \\
        --gff-output-path ${prefix}.gff3 \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.gff3
    """
}
