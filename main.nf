#!/usr/bin/env nextflow
/*
 * helixtune: Helixer's fine-tuning workflow as one pipeline.
 *
 *   --fasta G.fa --species S                       genome -> Helixer HDF5 (FASTA2H5) and, without
 *                                                   --model, gene models from Helixer.py with the
 *                                                   bundled default model (HELIXER)
 *   + --model M.h5                                  annotate with the (pretrained) model:
 *                                                   HYBRIDMODEL_PREDICT -> HELIXER_POST -> GFF3
 *   or --lineage L (without --model)                fetch lineage L's best released model
 *                                                   (FETCH_HELIXER_MODELS): HELIXER annotates with
 *                                                   it (HYBRIDMODEL_PREDICT -> HELIXER_POST with
 *                                                   --pseudolabels), and fine-tuning starts from it
 *   + --gff3 A.gff3                                 labels from an existing annotation
 *                                                   (IMPORT2GEENUFF -> GEENUFF2H5)
 *   or --pseudolabels (with a model)                labels from the model's own confident calls
 *                                                   (GFF3 -> IMPORT2GEENUFF -> GEENUFF2H5 ->
 *                                                   FILTER_TO_MOST_CERTAIN)
 *   + --bam 'a.bam,b.bam'                           RNA-seq coverage into the labels (ADD_NGS_COVERAGE)
 *   labels -> N90_TRAIN_VAL_SPLIT -> HYBRIDMODEL_TRAIN (fine-tunes --model when given; also
 *   --train_data_dir with ready training_data*.h5 / validation_data*.h5)
 *   -> HYBRIDMODEL_PREDICT + HELIXER_POST with the tuned model (tuned with coverage: the genome's
 *   coverage added (GENOME_COVERAGE) and --pretrained-model-path, as documented).
 *   + --reference_gff3 R.gff3                       COMPARE_ANNOTATIONS: the given and the tuned
 *                                                   model's gene models against these reference
 *                                                   genes (HTML/JSON/TSV report)
 *   or --input samplesheet.csv                      several genomes, one row each (columns species,
 *                                                   fasta, gff3, bam, strandedness, reference_gff3;
 *                                                   BAMs separated by ';'): each processed as above,
 *                                                   one model tuned on all of them
 *
 * Options of the steps live in conf/modules.config (ext.args); resources in conf/base.config.
 */

include { FASTA2H5                                 } from './modules/fasta2h5/main'
include { HYBRIDMODEL_PREDICT                      } from './modules/hybridmodel_predict/main'
include { HYBRIDMODEL_PREDICT as PREDICT_TUNED     } from './modules/hybridmodel_predict/main'
include { HELIXER_POST                             } from './modules/helixer_post/main'
include { HELIXER_POST as POST_TUNED               } from './modules/helixer_post/main'
include { ANNOTATION_TO_H5                         } from './subworkflows/annotation_to_h5/main'
include { ANNOTATION_TO_H5 as PSEUDOLABELS_TO_H5   } from './subworkflows/annotation_to_h5/main'
include { FILTER_TO_MOST_CERTAIN                   } from './modules/filter_to_most_certain/main'
include { ADD_NGS_COVERAGE                         } from './modules/add_ngs_coverage/main'
include { ADD_NGS_COVERAGE as GENOME_COVERAGE      } from './modules/add_ngs_coverage/main'
include { N90_TRAIN_VAL_SPLIT                      } from './modules/n90_train_val_split/main'
include { HYBRIDMODEL_TRAIN                        } from './modules/hybridmodel_train/main'
include { COMPARE_ANNOTATIONS                      } from './modules/compare_annotations/main'
include { HELIXER                                  } from './modules/helixer/main'
include { FETCH_HELIXER_MODELS                     } from './modules/fetch_helixer_models/main'

workflow {
    main:
    if (!params.fasta && !params.input && !params.train_data_dir) {
        error("Give the genome with --fasta <genome.fa[.gz]> --species <name>, several with --input <samplesheet.csv> (or ready training data with --train_data_dir)")
    }
    if (params.fasta && params.input) {
        error("Give one genome with --fasta or several with --input, not both")
    }
    if (params.fasta && !params.species) {
        error("Give the species name with --species <name> (letters, digits, _; at most 25 characters)")
    }
    if (params.pseudolabels && !params.model && !params.lineage) {
        error("--pseudolabels needs --model or --lineage: the labels are the model's own most confident predictions")
    }
    // One row per genome: [meta, fasta, gff3 or [], bams, bais, strandedness, reference gff3 or []]
    def rows = params.input
        ? samplesheetRows(params.input, params.strandedness)
        : params.fasta ? [genomeRow(params.species, params.fasta, params.gff3, params.bam, params.strandedness, params.reference_gff3)] : []
    def labelled = rows.findAll { row -> row[2] || params.pseudolabels }
    def coverage = labelled.any { row -> row[3] }
    if (coverage && !labelled.every { row -> row[3] }) {
        error("Fine-tuning with coverage needs BAMs for every genome with labels: give them for all or none")
    }

    // The pretrained model: the given file, or the best released model of --lineage (fetched once)
    ch_model = channel.empty()
    if (params.model) {
        ch_model = channel.value(file(params.model, checkIfExists: true))
    }
    else if (params.lineage) {
        FETCH_HELIXER_MODELS(channel.of([[id: params.lineage], params.lineage]))
        ch_model = FETCH_HELIXER_MODELS.out.model.map { _m, model -> model }.first()
    }

    ch_labels = channel.empty()  // tuple(meta, labels.h5): training matrices of each species
    ch_genome_h5 = channel.empty()
    ch_gene_models = channel.empty()  // tuple(meta, gff3) of every model that annotated a genome
    ch_fasta = channel.fromList(rows).map { row -> [row[0], row[1]] }
    if (rows) {
        // Genome FASTA -> Helixer HDF5 (data/X, seqids, species, start_ends)
        FASTA2H5(ch_fasta)
        ch_genome_h5 = FASTA2H5.out.h5

        // Annotate with the given model (or, for pseudolabels, the lineage's model): base-wise
        // predictions -> gene models (GFF3)
        if (params.model || params.pseudolabels) {
            HYBRIDMODEL_PREDICT(ch_genome_h5.combine(ch_model), [])
            HELIXER_POST(ch_genome_h5.join(HYBRIDMODEL_PREDICT.out.predictions))
            HELIXER_POST.out.gff3.view { m, gff3 -> "gene models of ${m.id} (${params.model ? 'given' : params.lineage} model): ${gff3}" }
            ch_gene_models = ch_gene_models.mix(HELIXER_POST.out.gff3)
        }
        // ... or in one step with Helixer.py: the lineage's model (--lineage in ext.args sets its
        // subsequence length) or the bundled default model
        else {
            HELIXER(ch_fasta, params.lineage ? ch_model : [])
            HELIXER.out.gff3.view { m, gff3 -> "gene models of ${m.id} (Helixer.py): ${gff3}" }
            ch_gene_models = ch_gene_models.mix(HELIXER.out.gff3)
        }

        // Labels from a genome's existing annotation ...
        ANNOTATION_TO_H5(channel.fromList(rows.findAll { row -> row[2] }).map { row -> [row[0], row[2], row[1]] })
        ch_labels = ANNOTATION_TO_H5.out.h5
        // ... or, without one, from the model's own most confident predictions (pseudolabels)
        if (params.pseudolabels) {
            ch_unannotated = channel.fromList(rows.findAll { row -> !row[2] }).map { row -> [row[0], row[1]] }
            PSEUDOLABELS_TO_H5(HELIXER_POST.out.gff3.join(ch_unannotated))
            FILTER_TO_MOST_CERTAIN(PSEUDOLABELS_TO_H5.out.h5.join(HYBRIDMODEL_PREDICT.out.predictions).join(ch_genome_h5))
            ch_labels = ch_labels.mix(FILTER_TO_MOST_CERTAIN.out.h5)
        }

        // Optional RNA-seq coverage (one column per BAM, in the order given) for coverage fine-tuning
        if (coverage) {
            ch_coverage = ch_labels
                .join(channel.fromList(rows).map { row -> [row[0], row[3], row[4], row[5]] })
                .multiMap { m, h5, bams, bais, strandedness ->
                    data: [m, h5, bams, bais]
                    strandedness: strandedness
                }
            ADD_NGS_COVERAGE(ch_coverage.data, ch_coverage.strandedness)
            ch_labels = ADD_NGS_COVERAGE.out.h5
        }
    }

    // Whole sequences (or blocks of them) to training or validation, per genome; one model is
    // tuned on the sets of all genomes (meta.coverage: with their RNA-seq coverage)
    N90_TRAIN_VAL_SPLIT(ch_labels)
    def tuned_id = rows.size() == 1 ? rows[0][0].id : 'multi_species'
    ch_train_sets = N90_TRAIN_VAL_SPLIT.out.training.join(N90_TRAIN_VAL_SPLIT.out.validation)
        .toSortedList { a, b -> a[0].id <=> b[0].id }
        .filter { sets -> sets }
        .map { sets -> [[id: tuned_id, coverage: coverage], sets.collect { set -> set[1] }, sets.collect { set -> set[2] }] }
    if (params.train_data_dir) {
        ch_training = channel.fromPath("${params.train_data_dir}/training_data*.h5", checkIfExists: true).collect()
        ch_validation = channel.fromPath("${params.train_data_dir}/validation_data*.h5", checkIfExists: true).collect()
        ch_train_sets = ch_train_sets.mix(ch_training.combine(ch_validation.map { files -> [files] }).map { training, validation -> [[id: 'training'], training, validation] })
    }

    // Train, or fine-tune the given or fetched model (the mode is ext.args in conf/modules.config)
    ch_pretrained = params.model || params.lineage
        ? ch_model.map { model -> [[id: 'pretrained'], model] }
        : channel.value([[id: 'none'], []])
    HYBRIDMODEL_TRAIN(ch_train_sets, ch_pretrained)
    HYBRIDMODEL_TRAIN.out.model.view { m, model -> "tuned model of ${m.id}: ${model}" }

    // Annotate each genome with the tuned model. A model tuned with coverage predicts from the
    // genome file with the genome's coverage added and with the model it was tuned from
    // (--pretrained-model-path), as Helixer's documentation runs it; meta.coverage selects the
    // coverage options (conf/modules.config).
    if (rows) {
        ch_tuned_genome_h5 = ch_genome_h5
        ch_tuned_from = []
        if (coverage) {
            ch_genome_coverage = ch_genome_h5
                .join(channel.fromList(rows.findAll { row -> row[3] }).map { row -> [row[0], row[3], row[4], row[5]] })
                .multiMap { m, h5, bams, bais, strandedness ->
                    data: [m + [coverage: true], h5, bams, bais]
                    strandedness: strandedness
                }
            GENOME_COVERAGE(ch_genome_coverage.data, ch_genome_coverage.strandedness)
            ch_tuned_genome_h5 = GENOME_COVERAGE.out.h5
            ch_tuned_from = params.model || params.lineage ? ch_model : []  // fine-tuned: its body
        }
        PREDICT_TUNED(
            ch_tuned_genome_h5.combine(HYBRIDMODEL_TRAIN.out.model.filter { m, _model -> !labelled || m.id == tuned_id }.map { _m, model -> model }),
            ch_tuned_from
        )
        POST_TUNED(ch_genome_h5.join(PREDICT_TUNED.out.predictions.map { m, predictions -> [m.subMap('id'), predictions] }))
        POST_TUNED.out.gff3.view { m, gff3 -> "gene models of ${m.id} (tuned model): ${gff3}" }
        ch_gene_models = ch_gene_models.mix(POST_TUNED.out.gff3)
    }

    // With reference genes: how the given and the tuned model compare with them (one report per genome)
    def references = rows.findAll { row -> row[6] }
    if (references) {
        COMPARE_ANNOTATIONS(
            ch_gene_models.groupTuple()
                .join(channel.fromList(references).map { row -> [row[0], row[6], row[1]] })
                .map { m, gff3s, reference, fasta -> [m, reference, gff3s, [], fasta] }
        )
        COMPARE_ANNOTATIONS.out.html.view { m, html -> "comparison with the reference genes of ${m.id}: ${html}" }
    }

    // Versions of every tool that ran, from the `versions` topic channel, once.
    channel.topic('versions')
        .map { process, tool, version -> "${process.tokenize(':').last()}:\n  ${tool}: ${version}" }
        .unique()
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", newLine: true, sort: true)
}

// The genome of --fasta/--species/--gff3/--bam/--strandedness/--reference_gff3 as a samplesheet row
def genomeRow(species, fasta, gff3, bam, strandedness, reference_gff3) {
    def bams = bam
        ? bam.toString().tokenize(',').collect { pattern -> files(pattern.trim(), checkIfExists: true).sort() }.flatten()
        : []
    return [[id: species], file(fasta, checkIfExists: true), gff3 ? file(gff3, checkIfExists: true) : [], bams,
            indexes(bams), strandedness, reference_gff3 ? file(reference_gff3, checkIfExists: true) : []]
}

// Rows of --input (CSV with a header: species,fasta[,gff3][,bam][,strandedness][,reference_gff3];
// several BAMs separated by ';'; strandedness defaults to --strandedness), checked with the line
// named in every error
def samplesheetRows(path, defaultStrandedness) {
    def sheet = file(path, checkIfExists: true)
    def rows = []
    sheet.splitCsv(header: true).eachWithIndex { row, i ->
        def where = "${sheet.name} line ${i + 2}"
        def species = row.species?.trim()
        if (!(species ==~ /[A-Za-z0-9_]{1,25}/)) {
            error("${where}: species '${species ?: ''}' must be letters, digits and _ (at most 25 characters)")
        }
        if (rows.any { other -> other[0].id == species }) {
            error("${where}: species ${species} is given twice")
        }
        if (!row.fasta?.trim()) {
            error("${where}: no fasta")
        }
        def strandedness = row.strandedness?.trim() ?: defaultStrandedness
        if (!(strandedness in ['second-read-is-sense-strand', 'first-read-is-sense-strand', 'unstranded'])) {
            error("${where}: strandedness must be second-read-is-sense-strand, first-read-is-sense-strand or unstranded, not '${strandedness}'")
        }
        def bams = (row.bam ?: '').tokenize(';').collect { bam -> file(bam.trim(), checkIfExists: true) }
        rows << [[id: species], file(row.fasta.trim(), checkIfExists: true),
                 row.gff3?.trim() ? file(row.gff3.trim(), checkIfExists: true) : [], bams, indexes(bams), strandedness,
                 row.reference_gff3?.trim() ? file(row.reference_gff3.trim(), checkIfExists: true) : []]
    }
    if (!rows) {
        error("${sheet.name}: no genomes")
    }
    return rows
}

// The .bai beside each BAM, where there is one
def indexes(bams) {
    return bams.collect { bam -> file("${bam}.bai") }.findAll { bai -> bai.exists() }
}
