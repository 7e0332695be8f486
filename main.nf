#!/usr/bin/env nextflow
/*
 * helixtune: FASTA/GFF3 -> Helixer HDF5 -> (coverage, pseudolabels, split, training, prediction,
 * post-processing). Each step is one module under modules/; add a step as one more include and a
 * few lines in the workflow below. Options of the steps live in conf/modules.config (ext.args).
 */

include { FASTA2H5 } from './modules/fasta2h5/main'
include { HYBRIDMODEL_TRAIN } from './modules/hybridmodel_train/main'

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

    // Later steps plug in here and read FASTA2H5.out.h5 (the genome h5) or ch_fasta, e.g.
    //   IMPORT2GEENUFF(ch_fasta.join(ch_gff3)) -> GEENUFF2H5(IMPORT2GEENUFF.out.db)
    //   HYBRIDMODEL_PREDICT(FASTA2H5.out.h5.combine(ch_model)) -> HELIXER_POST(...)

    // Train / fine-tune (HybridModel.py): a channel of [meta, training files, validation files].
    // From --train_data_dir (training_data*.h5 + validation_data*.h5) here; the split step's
    // outputs plug in the same way, e.g. SPLIT.out.training.join(SPLIT.out.validation).
    // The mode (from scratch, --resume-training [--fine-tune], --fine-tune-resume) is ext.args of
    // HYBRIDMODEL_TRAIN in conf/modules.config; --pretrained_model gives --load-model-path.
    if (params.train_data_dir) {
        ch_training = channel.fromPath("${params.train_data_dir}/training_data*.h5", checkIfExists: true)
            .collect()
            .map { files -> [[id: params.species], files] }
        ch_validation = channel.fromPath("${params.train_data_dir}/validation_data*.h5", checkIfExists: true)
            .collect()
            .map { files -> [[id: params.species], files] }
        ch_pretrained = params.pretrained_model
            ? channel.value([[id: 'pretrained'], file(params.pretrained_model, checkIfExists: true)])
            : channel.value([[id: 'none'], []])
        HYBRIDMODEL_TRAIN(ch_training.join(ch_validation), ch_pretrained)
        HYBRIDMODEL_TRAIN.out.model.view { meta, model -> "best model of ${meta.id}: ${model}" }
    }

    // Versions of every tool that ran, from the `versions` topic channel, once.
    channel.topic('versions')
        .map { process, tool, version -> "${process.tokenize(':').last()}:\n  ${tool}: ${version}" }
        .unique()
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", newLine: true, sort: true)
}
