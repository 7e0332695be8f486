process ADD_NGS_COVERAGE {
    tag "${meta.id}"
    label 'process_medium'

    container 'quay.io/helixtune/helixtune:0.1.0'

    input:
    tuple val(meta), path(h5, stageAs: 'input/*'), path(bams, stageAs: 'bam/*'), path(bais, stageAs: 'bam/*')
    val strandedness  // 'second-read-is-sense-strand' (dUTP), 'first-read-is-sense-strand' or 'unstranded'

    output:
    tuple val(meta), path("${prefix}.h5"), emit: h5
    path "${prefix}.log", emit: log
    tuple val("${task.process}"), val('add_ngs_coverage.py'), eval('add_ngs_coverage.py --version | cut -d" " -f2'), emit: versions_add_ngs_coverage, topic: versions


    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}.coverage"
    if (!(strandedness in ['second-read-is-sense-strand', 'first-read-is-sense-strand', 'unstranded'])) {
        error("ADD_NGS_COVERAGE: strandedness must be second-read-is-sense-strand, first-read-is-sense-strand or unstranded, not '${strandedness}'")
    }
    // ${bams}: one BAM is a path, several a blank-separated list (a path's .join() would split its
    // directories). The staged input h5 is a link into another task's work directory: never change it in place.
    """
    cp -L ${h5} ${prefix}.h5
    add_ngs_coverage.py \\
        --h5-data ${prefix}.h5 \\
        --species ${meta.id} \\
        --bam ${bams} \\
        --${strandedness} \\
        --threads ${task.cpus} \\
        ${args} \\
        2> ${prefix}.log || { cat ${prefix}.log >&2; exit 1; }
    cat ${prefix}.log >&2
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}.coverage"
    """
    touch ${prefix}.h5
    touch ${prefix}.log
    """
}
