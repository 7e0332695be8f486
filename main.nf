#!/usr/bin/env nextflow
/*
 * helixtune pipeline: the documented Helixer steps as modules.
 * Post-processing: genome HDF5 + predictions HDF5 -> gene models (GFF3).
 * (The genome file comes from fasta2h5.py and the predictions from HybridModel.py; until those
 * steps are wired in here, both are given as parameters.)
 */
nextflow.enable.dsl = 2

include { HELIXER_POST } from './modules/helixer_post/main'

params.genome_h5      = null
params.predictions_h5 = null

workflow {
    main:
    // [ meta, genome.h5 ] and [ meta, predictions.h5 ], joined on meta.id
    ch_genome_h5 = params.genome_h5
        ? channel.fromPath(params.genome_h5, checkIfExists: true).map { f -> [ [ id: f.baseName ], f ] }
        : channel.empty()
    ch_predictions_h5 = params.predictions_h5
        ? channel.fromPath(params.predictions_h5, checkIfExists: true).map { f -> [ [ id: file(params.genome_h5).baseName ], f ] }
        : channel.empty()

    // Post-processing (HelixerPost): predictions -> GFF3
    HELIXER_POST(ch_genome_h5.join(ch_predictions_h5))

    publish:
    gff3 = HELIXER_POST.out.gff3
}

output {
    gff3 {
        path 'gff3'
    }
}
