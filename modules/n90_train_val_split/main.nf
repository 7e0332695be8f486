process N90_TRAIN_VAL_SPLIT {
    tag "${meta.id}"
    label 'process_low'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(h5)

    output:
    tuple val(meta), path("${prefix}", type: 'dir'), emit: data_dir
    tuple val(meta), path("${prefix}/training_data.h5"), emit: training
    tuple val(meta), path("${prefix}/validation_data.h5"), emit: validation
    tuple val(meta), path("${prefix}/train_val_assignment.tsv"), emit: assignment
    tuple val("${task.process}"), val('n90_train_val_split.py'), eval('n90_train_val_split.py --version | cut -d" " -f2'), emit: versions_n90_train_val_split, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}_fine_tuning_data"
    """
    mkdir -p ${prefix}
    n90_train_val_split.py \\
        --h5-to-split ${h5} \\
        --output-pfx ${prefix}/ \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}_fine_tuning_data"
    """
    mkdir -p ${prefix}
    touch ${prefix}/training_data.h5
    touch ${prefix}/validation_data.h5
    touch ${prefix}/train_val_assignment.tsv
    """
}
