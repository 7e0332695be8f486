#!/usr/bin/env nextflow
/*
 * helixtune: FASTA/GFF3 -> Helixer HDF5 -> (coverage, pseudolabels, split, training, prediction,
 * post-processing). Each step is one module under modules/; add a step as one more include and a
 * few lines in the workflow below. Options of the steps live in conf/modules.config (ext.args).
 */

include { FASTA2H5         } from './modules/fasta2h5/main'
include { ANNOTATION_TO_H5 } from './subworkflows/annotation_to_h5/main'

workflow {
    main:
    if (!params.fasta) {
        error("Give the genome with --fasta <genome.fa[.gz]> (and --species <name>)")
    }
    if (!params.species) {
        error("Give the species name with --species <name> (letters, digits, _; at most 25 characters)")
    }

    // The species name is the sample id: every step keys its outputs by meta.id.
    ch_fasta = channel.fromPath(params.fasta, checkIfExists: true)
        .map { fasta -> [[id: params.species], fasta] }

    // Genome FASTA -> Helixer HDF5 (data/X, seqids, species, start_ends)
    FASTA2H5(ch_fasta)
    ch_genome_h5 = FASTA2H5.out.h5  // tuple(meta, genome.h5): input of prediction and of coverage
    ch_genome_h5.view { meta, h5 -> "genome HDF5 of ${meta.id}: ${h5}" }

    // --gff3: FASTA + GFF3 -> training HDF5 (import2geenuff.py, geenuff2h5.py)
    if (params.gff3) {
        ch_annotated = ch_fasta.map { meta, fasta -> [meta, file(params.gff3, checkIfExists: true), fasta] }
        ANNOTATION_TO_H5(ch_annotated)
    }

    // Later steps plug in here and read FASTA2H5.out.h5 (the genome h5) or ch_fasta, e.g.
    //   IMPORT2GEENUFF(ch_fasta.join(ch_gff3)) -> GEENUFF2H5(IMPORT2GEENUFF.out.db)
    //   HYBRIDMODEL_PREDICT(FASTA2H5.out.h5.combine(ch_model)) -> HELIXER_POST(...)

    // Versions of every tool that ran, from the `versions` topic channel, once.
    channel.topic('versions')
        .map { process, tool, version -> "${process.tokenize(':').last()}:\n  ${tool}: ${version}" }
        .unique()
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", newLine: true, sort: true)
}
