"""Korean: label provenance, patient subgroups and calibrated scores (the same keys and {placeholders} as
en/provenance.py)."""

MESSAGES: dict[str, str] = {
    "batch.row_bad_fitzpatrick": "잘못된 fitzpatrick 값 '{value}': I, II, III, IV, V, VI (또는 1-6) 중 하나를 쓰거나 "
                                 "비워 두세요",
    "batch.row_bad_site": "site가 너무 깁니다 ({chars}자): 80자까지 쓸 수 있습니다",
    "batch.row_bad_age": "잘못된 age 값 '{value}': 0부터 120까지의 나이(정수, 년)를 쓰거나 비워 두세요",
    "batch.row_bad_sex": "잘못된 sex 값 '{value}': female, male, other (또는 f, m) 중 하나를 쓰거나 비워 두세요",
    "batch.row_bad_label_basis": "잘못된 label_basis 값 '{value}': histology, clinician, arbitrated, "
                                 "confirmed_answer 중 하나를 쓰거나 비워 두세요",
    "batch.row_bad_label_reviewer": "label_reviewer가 너무 깁니다 ({chars}자): 80자까지 쓸 수 있습니다",
    "batch.row_bad_label_note": "label_note가 너무 깁니다 ({chars}자): 500자까지 쓸 수 있습니다",
}

TEXT: dict[str, str] = {
}
