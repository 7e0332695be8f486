// FASTA + GFF3/GTF -> GeenuFF database -> Helixer training HDF5 (import2geenuff.py, geenuff2h5.py)
include { IMPORT2GEENUFF } from '../../modules/import2geenuff/main'
include { GEENUFF2H5     } from '../../modules/geenuff2h5/main'

workflow ANNOTATION_TO_H5 {
    take:
    ch_annotated // channel: [ val(meta), path(gff3), path(fasta) ]

    main:
    IMPORT2GEENUFF(ch_annotated)
    GEENUFF2H5(IMPORT2GEENUFF.out.db)

    emit:
    db         = IMPORT2GEENUFF.out.db  // channel: [ val(meta), path(sqlite3) ]
    import_log = IMPORT2GEENUFF.out.log // channel: [ val(meta), path(log) ]
    h5         = GEENUFF2H5.out.h5      // channel: [ val(meta), path(h5) ] training matrices
}
