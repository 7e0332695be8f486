process HYBRIDMODEL_TRAIN {
    tag "${meta.id}"
    label 'process_high'
    label 'process_gpu'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(training, stageAs: 'data/training_data.*.h5'), path(validation, stageAs: 'data/validation_data.*.h5')
    tuple val(meta2), path(pretrained)

    output:
    tuple val(meta), path("${prefix}.h5"), emit: model
    tuple val("${task.process}"), val('HybridModel.py'), eval('HybridModel.py --version | cut -d" " -f2'), emit: versions_hybridmodel, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    // The mode comes from ext.args: nothing (from scratch), --resume-training,
    // --resume-training --fine-tune [--input-coverage --coverage-norm log], --fine-tune-resume.
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}.best_model"
    def load = pretrained ? "--load-model-path ${pretrained}" : ''
    """
    HybridModel.py \\
        --data-dir data \\
        --save-model-path ${prefix}.h5 \\
        ${load} \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}.best_model"
    """
    touch ${prefix}.h5
    """
}
