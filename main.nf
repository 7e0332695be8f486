#!/usr/bin/env nextflow
/*
 * helixtune: FASTA/GFF3 -> Helixer HDF5 -> (coverage, pseudolabels, split, training, prediction,
 * post-processing). Each step is one module under modules/; add a step as one more include and a
 * few lines in the workflow below. Options of the steps live in conf/modules.config (ext.args).
 */

include { FASTA2H5               } from './modules/fasta2h5/main'
include { ANNOTATION_TO_H5       } from './subworkflows/annotation_to_h5/main'
include { FILTER_TO_MOST_CERTAIN } from './modules/filter_to_most_certain/main'
include { N90_TRAIN_VAL_SPLIT    } from './modules/n90_train_val_split/main'

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

    // Pseudolabels: keep the rows whose raw predictions agree best with the post-processed labels,
    // then split them into training/validation files (the --data-dir of HybridModel.py).
    // --pseudolabels: geenuff2h5 file of the post-processed GFF3; --predictions: HybridModel
    // predictions made from the genome HDF5 above. (Once the predict/post-process/import/geenuff2h5
    // modules exist, their outputs replace these two params:
    //   HYBRIDMODEL_PREDICT -> HELIXER_POST -> IMPORT2GEENUFF -> GEENUFF2H5 -> FILTER_TO_MOST_CERTAIN.)
    if (params.pseudolabels && params.predictions) {
        ch_pseudolabels = channel.fromPath(params.pseudolabels, checkIfExists: true)
            .map { h5 -> [[id: params.species], h5] }
        ch_predictions = channel.fromPath(params.predictions, checkIfExists: true)
            .map { h5 -> [[id: params.species], h5] }
        FILTER_TO_MOST_CERTAIN(ch_pseudolabels.join(ch_predictions).join(ch_genome_h5))
        N90_TRAIN_VAL_SPLIT(FILTER_TO_MOST_CERTAIN.out.h5)
        N90_TRAIN_VAL_SPLIT.out.data_dir.view { meta, dir -> "fine-tuning data of ${meta.id}: ${dir}" }
    }

    // Versions of every tool that ran, from the `versions` topic channel, once.
    channel.topic('versions')
        .map { process, tool, version -> "${process.tokenize(':').last()}:\n  ${tool}: ${version}" }
        .unique()
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", newLine: true, sort: true)
}
