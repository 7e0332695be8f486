process COMPARE_ANNOTATIONS {
    tag "${meta.id}"
    label 'process_single'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(reference, stageAs: 'reference/*'), path(predictions, stageAs: 'predictions/?/*'), path(prediction_data, stageAs: 'prediction_data/*'), path(fasta, stageAs: 'genome/*')

    output:
    tuple val(meta), path("${prefix}/report.html"), emit: html
    tuple val(meta), path("${prefix}/report.json"), emit: json
    tuple val(meta), path("${prefix}/per_sequence.tsv"), emit: tsv
    tuple val("${task.process}"), val('compare_annotations.py'), eval('compare_annotations.py --version | cut -d" " -f2'), emit: versions_compare_annotations, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}.comparison"
    // prediction_data: the data file(s) the .h5 predictions were made on; fasta: for GFF3
    // inputs and the splice-site check (both optional: pass [])
    def data_arg = prediction_data ? "--prediction-data ${prediction_data}" : ''
    def fasta_arg = fasta ? "--fasta ${fasta}" : ''
    """
    compare_annotations.py \\
        --reference ${reference} \\
        --predictions ${predictions} \\
        ${data_arg} \\
        ${fasta_arg} \\
        --output-dir ${prefix} \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}.comparison"
    """
    mkdir -p ${prefix}
    touch ${prefix}/report.html
    touch ${prefix}/report.json
    touch ${prefix}/per_sequence.tsv
    """
}
