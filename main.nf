#!/usr/bin/env nextflow
/*
 * helixtune: FASTA/GFF3 -> Helixer HDF5 -> (coverage, pseudolabels, split, training, prediction,
 * post-processing). Each step is one module under modules/; add a step as one more include and a
 * few lines in the workflow below. Options of the steps live in conf/modules.config (ext.args).
 */

include { FASTA2H5         } from './modules/fasta2h5/main'
include { ANNOTATION_TO_H5 } from './subworkflows/annotation_to_h5/main'
include { HELIXER_POST     } from './modules/helixer_post/main'
include { ADD_NGS_COVERAGE } from './modules/add_ngs_coverage/main'
include { FILTER_TO_MOST_CERTAIN } from './modules/filter_to_most_certain/main'
include { N90_TRAIN_VAL_SPLIT } from './modules/n90_train_val_split/main'
include { HYBRIDMODEL_PREDICT } from './modules/hybridmodel_predict/main'
include { ANNOTATION_TO_H5 as PSEUDOLABELS_TO_H5 } from './subworkflows/annotation_to_h5/main'

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

    // Optional: RNA-seq coverage (--bam 'a.bam,b.bam' or a glob; one column per BAM in this order)
    // for coverage fine-tuning. On an annotated file (geenuff2h5) the log also checks strandedness.
    if (params.bam) {
        def bams = params.bam.toString().tokenize(',').collect { pattern -> files(pattern.trim(), checkIfExists: true).sort() }.flatten()
        def bais = bams.collect { bam -> file("${bam}.bai") }.findAll { bai -> bai.exists() }
        ADD_NGS_COVERAGE(ch_genome_h5.map { meta, h5 -> [meta, h5, bams, bais] }, params.strandedness)
        ADD_NGS_COVERAGE.out.h5.view { meta, h5 -> "HDF5 of ${meta.id} with coverage: ${h5}" }
    }

    // Genome HDF5 + model -> base-wise predictions (HelixerPost's input); with --model <model.h5>
    if (params.model) {
        ch_model = channel.fromPath(params.model, checkIfExists: true)
        HYBRIDMODEL_PREDICT(ch_genome_h5.combine(ch_model))
        ch_predictions = HYBRIDMODEL_PREDICT.out.predictions  // tuple(meta, predictions.h5)
        ch_predictions.view { meta, h5 -> "predictions of ${meta.id}: ${h5}" }
    }

    // Post-processing: genome HDF5 + predictions HDF5 -> gene models GFF3 (helixer_post_bin).
    // The predictions come from HYBRIDMODEL_PREDICT (--model) or are given with --predictions.
    if (params.model || params.predictions) {
        ch_post_predictions = params.model
            ? HYBRIDMODEL_PREDICT.out.predictions
            : ch_genome_h5.map { meta, _h5 -> [meta, file(params.predictions, checkIfExists: true)] }
        HELIXER_POST(ch_genome_h5.join(ch_post_predictions))  // tuple(meta, genome.h5, predictions.h5)
        HELIXER_POST.out.gff3.view { meta, gff3 -> "gene models of ${meta.id}: ${gff3}" }

        // Pseudolabels (--pseudolabels): the model's own confident predictions as fine-tuning data.
        // gene models GFF3 -> import2geenuff -> geenuff2h5 (same subsequence length as the
        // predictions) -> filter-to-most-certain.py (rows paired with the predictions by
        // seqid/start/end) -> n90_train_val_split.py: training_data.h5 and validation_data.h5,
        // the --data-dir of HybridModel.py.
        if (params.pseudolabels) {
            PSEUDOLABELS_TO_H5(HELIXER_POST.out.gff3.join(ch_fasta))
            FILTER_TO_MOST_CERTAIN(PSEUDOLABELS_TO_H5.out.h5.join(ch_post_predictions).join(ch_genome_h5))
            N90_TRAIN_VAL_SPLIT(FILTER_TO_MOST_CERTAIN.out.h5)
            N90_TRAIN_VAL_SPLIT.out.data_dir.view { meta, dir -> "fine-tuning data of ${meta.id}: ${dir}" }
        }
    }
    if (params.pseudolabels && !params.model && !params.predictions) {
        error("--pseudolabels needs predictions to make them from: --model <model.h5> or --predictions <predictions.h5>")
    }

    // Versions of every tool that ran, from the `versions` topic channel, once.
    channel.topic('versions')
        .map { process, tool, version -> "${process.tokenize(':').last()}:\n  ${tool}: ${version}" }
        .unique()
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", newLine: true, sort: true)
}
