"""English: label provenance, patient subgroups and calibrated scores (issue 22): the cases CSV's optional columns,
the review form's basis, the batch's duplicate and conflicting cases, the card's calibrated score and refer rule."""

# Message ids (a `Message`'s code), spliced into messages.MESSAGES: a cases file's bad optional value, said after
# "line N (id X): " (qa/case_columns.py).
MESSAGES: dict[str, str] = {
    "batch.row_bad_fitzpatrick": "bad fitzpatrick value '{value}': use I, II, III, IV, V or VI (or 1-6), or leave "
                                 "it empty",
    "batch.row_bad_site": "site is too long ({chars} characters): at most 80",
    "batch.row_bad_age": "bad age '{value}': use whole years from 0 to 120, or leave it empty",
    "batch.row_bad_sex": "bad sex value '{value}': use female, male or other (or f, m), or leave it empty",
    "batch.row_bad_label_basis": "bad label_basis '{value}': use histology, clinician, arbitrated or "
                                 "confirmed_answer, or leave it empty",
    "batch.row_bad_label_reviewer": "label_reviewer is too long ({chars} characters): at most 80",
    "batch.row_bad_label_note": "label_note is too long ({chars} characters): at most 500",
}

# The pages' words.
TEXT: dict[str, str] = {
}
