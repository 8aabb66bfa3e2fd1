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
    # A QA review the store refuses (storage/reviews.py).
    "review.unknown_basis": "Unknown basis '{basis}': use one of {choices}.",
    "review.basis_without_class": "A basis needs a class: choose the class the case is, or mark the answer correct.",
    "review.note_too_long": "The note is too long ({chars} characters): at most {most}.",
}

# The pages' words.
TEXT: dict[str, str] = {
    # The QA review form (app_pages/qa.py).
    "qa.review.basis": "The class rests on (optional)",
    "qa.review.basis.histology": "histology (biopsy or excision)",
    "qa.review.basis.clinician": "my clinical judgement",
    "qa.review.basis_help": "What the class is based on, for the labelled set. Leave it empty when you only "
                            "confirm the answer's class: the label then counts as a confirmed answer, and the QA "
                            "figures are also given without such labels.",
    "qa.review.basis_line": " · based on {basis}",
    "qa.review.note_placeholder": "e.g. biopsy: nodular BCC",
    # The Batch tab: rows that did not run (ui/case_screen_view.py).
    "qa.batch.duplicate": "Counted once: case {kept} is repeated as {ids} (same text and photo).",
    "qa.batch.conflict": "Left out: {ids} are one case labelled with different classes ({labels}); settle the "
                         "label and run them again.",
    # The card's calibrated score and refer rule (ui/card.py; CALIBRATION_FILE, REFER_BELOW).
    "result.calibrated": "calibrated {score:.0f} / 100: about {score:.0f} in 100 such answers were right (calibrated "
                         "on {n} cases, {date})",
    "result.refer": "Refer: low confidence",
    "result.refer_why": "The calibrated score {score:.0f} is below the clinic's threshold of {threshold:g}: have a "
                        "dermatologist review this case.",
    # History's calibrated score column (app_pages/history.py).
    "history.col.calibrated": "Calibrated",
    "history.col.calibrated_help": "The model's score calibrated on a labelled batch: about how "
                                   "many in 100 such answers were right.",
    # The Labelled set tab: where the labels come from (ui/labelled_panel.py).
    "qa.labelled.bases": "Label basis: {bases}.",
    "qa.labelled.basis.histology": "{n} histology",
    "qa.labelled.basis.clinician": "{n} clinician's judgement",
    "qa.labelled.basis.arbitrated": "{n} arbitrated",
    "qa.labelled.basis.confirmed_answer": "{n} only confirm a provider's answer",
    "qa.labelled.confirmed_only": "{n} of {total} labels only confirm a provider's own answer: figures on them "
                                  "favour that provider. Where you have a biopsy result or your own judgement, "
                                  "choose it as the basis when you review.",
}
