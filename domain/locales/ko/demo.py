"""한국어: 페이지의 데모 팩 (engine/demo.py): 제공자가 없을 때의 안내, 데모 사례 선택, 데모 답변마다 붙는 설명."""

TEXT: dict[str, str] = {
    "demo.provider": "데모 팩 (예시 답변)",
    "demo.example": "데모용으로 작성한 예시 답변입니다: 모델의 출력이 아니며 진단이 아닙니다.",
    "demo.offer": "아직 설정된 AI 제공자가 없습니다. 그래도 앱 전체를 둘러볼 수 있습니다: 데모 팩에는 예시 사례 "
                  "{count}개(그중 사진 {photos}개)가 있고, 데모용으로 작성한 예시 답변으로 답합니다. 네트워크가 필요 "
                  "없습니다.",
    "demo.try": "데모 체험",
    "demo.session": "데모: 데모 사례에는 모델이 아닌, 데모용으로 작성한 예시 답변으로 답합니다. AI 제공자에게 묻지 "
                    "않으며, 2차 판독도 하지 않습니다.",
    "demo.leave": "데모 끝내기",
    "demo.pick": "데모 사례 고르기",
    "demo.pick_placeholder": "데모 사례를 고르세요",
    "demo.pick_help": "설명이 입력란에 채워지거나 사진이 설정됩니다. 그다음 평가를 누르세요.",
    "demo.kind.text": "글",
    "demo.kind.image": "사진",
    "demo.option": "{kind} · {text}",
    "demo.cases_heading": "데모 사례",
    "demo.history_note": "이 중 {n}건은 데모용으로 작성한 예시 답변입니다 ({provider}): 모델의 출력이 아니며 진단이 "
                         "아닙니다.",
    "demo.qa_note": "데모 모드: 여기서는 데모 팩이 유일한 제공자이며, 그 답변은 모델의 출력이 아니라 데모용으로 "
                    "작성한 예시입니다.",
}
