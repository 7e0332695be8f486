process HYBRIDMODEL_PREDICT {
    tag "${meta.id}"
    label 'process_high'
    label 'process_gpu'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(h5), path(model)
    path(pretrained, stageAs: 'pretrained/*')  // a model tuned with coverage: the model it was tuned from; else []

    output:
    tuple val(meta), path("${prefix}.predictions.h5"), emit: predictions
    tuple val("${task.process}"), val('HybridModel.py'), eval('HybridModel.py --version | cut -d" " -f2'), emit: versions_hybridmodel, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    def pre = pretrained ? "--pretrained-model-path ${pretrained}" : ''
    """
    HybridModel.py \\
        --load-model-path ${model} \\
        --test-data ${h5} \\
        --prediction-output-path ${prefix}.predictions.h5 \\
        ${pre} \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.predictions.h5
    """
}
