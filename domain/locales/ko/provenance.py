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
    "review.unknown_basis": "알 수 없는 근거 '{basis}': {choices} 중 하나를 쓰세요.",
    "review.basis_without_class": "근거에는 분류가 있어야 합니다: 이 증례의 분류를 고르거나 답변을 정답으로 표시하세요.",
    "review.note_too_long": "메모가 너무 깁니다 ({chars}자): {most}자까지 쓸 수 있습니다.",
}

TEXT: dict[str, str] = {
    "qa.review.basis": "분류의 근거 (선택)",
    "qa.review.basis.histology": "조직검사 (생검 또는 절제)",
    "qa.review.basis.clinician": "임상의 판단",
    "qa.review.basis_help": "라벨 세트에 남길 분류의 근거입니다. 답변의 분류를 확인만 할 때는 비워 두세요: 그 라벨은 "
                            "'답변 확인'으로 기록되고, QA 수치는 그런 라벨을 뺀 값도 함께 보여 줍니다.",
    "qa.review.basis_line": " · 근거: {basis}",
    "qa.review.note_placeholder": "예: 생검 결과 결절성 기저세포암",
    "qa.batch.duplicate": "한 번만 셌습니다: 증례 {kept}이(가) {ids}(으)로 다시 나옵니다 (같은 설명과 사진).",
    "qa.batch.conflict": "제외했습니다: {ids}은(는) 한 증례인데 분류가 서로 다릅니다 ({labels}). 라벨을 정한 뒤 "
                         "다시 실행하세요.",
    "result.calibrated": "보정 점수 {score:.0f} / 100: 이런 답변 100건 중 약 {score:.0f}건이 맞았습니다 "
                         "({date}, {n}건으로 보정)",
    "result.refer": "의뢰: 신뢰도 낮음",
    "result.refer_why": "보정 점수 {score:.0f}이(가) 병원 기준 {threshold:g}보다 낮습니다: 피부과 전문의의 검토를 받으세요.",
    "history.col.calibrated": "보정 점수",
    "history.col.calibrated_help": "라벨이 있는 배치로 보정한 모델 점수: 이런 답변 100건 중 약 몇 건이 "
                                   "맞았는지를 뜻합니다.",
    "qa.labelled.bases": "라벨 근거: {bases}.",
    "qa.labelled.basis.histology": "조직검사 {n}건",
    "qa.labelled.basis.clinician": "임상의 판단 {n}건",
    "qa.labelled.basis.arbitrated": "판정 {n}건",
    "qa.labelled.basis.confirmed_answer": "제공자 답변 확인만 {n}건",
    "qa.labelled.confirmed_only": "라벨 {total}건 중 {n}건은 제공자 자신의 답변을 확인만 한 것입니다: 이런 라벨로 낸 "
                                  "수치는 그 제공자에게 유리합니다. 생검 결과나 직접 판단한 근거가 있으면 리뷰할 때 "
                                  "근거로 고르세요.",
}
