#!/usr/bin/env nextflow
// helixtune pipeline. Branches (each runs when its inputs are given):
//   --fasta + --gff3 -> training HDF5 (import2geenuff.py, geenuff2h5.py)
include { ANNOTATION_TO_H5 } from './subworkflows/annotation_to_h5/main'

params.species = null
params.fasta   = null
params.gff3    = null

workflow {
    main:
    if (params.fasta && params.gff3) {
        def meta = [id: params.species ?: file(params.fasta).simpleName]
        ch_annotated = channel.of([meta, file(params.gff3, checkIfExists: true), file(params.fasta, checkIfExists: true)])
        ANNOTATION_TO_H5(ch_annotated)
    }
}
