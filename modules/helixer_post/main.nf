process HELIXER_POST {
    tag "${meta.id}"
    label 'process_medium'
    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(genome_h5), path(predictions_h5)

    output:
    tuple val(meta), path("*.gff3"), emit: gff3
    tuple val("${task.process}"), val('helixer_post_bin'), eval('helixer_post_bin --version | cut -d" " -f2'), emit: versions_helixer_post_bin, topic: versions


    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    helixer_post_bin \\
        --genome-h5 ${genome_h5} \\
        --predictions-h5 ${predictions_h5} \\
        --gff-output-path ${prefix}.gff3 \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.gff3
    """
}
