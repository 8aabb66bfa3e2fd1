"""The simulated model's answers: contract XML with Korean findings, of a chosen length.

The 15 classes are written out here rather than imported from `providers`: the
simulator plays the remote model, and it should know the contract the way the model
does, not share code with the client it is measuring.
"""

from __future__ import annotations

import hashlib
import random

from bench.simulator.tokens import count_tokens, split_tokens

# (code, Korean name, risk), as in the answer contract.
_CLASSES = (
    (0, "광선각화증", "premalignant"), (1, "기저세포암", "malignant"), (2, "멜라닌세포모반", "benign"),
    (3, "보웬병", "premalignant"), (4, "비립종", "benign"), (5, "사마귀", "benign"),
    (6, "악성흑색종", "malignant"), (7, "지루각화증", "benign"), (8, "편평세포암", "malignant"),
    (9, "표피낭종", "benign"), (10, "피부섬유종", "benign"), (11, "피지샘증식증", "benign"),
    (12, "혈관종", "benign"), (13, "화농 육아종", "benign"), (14, "흑색점", "benign"),
)

_SITES = ("코 옆", "뺨", "이마", "등", "팔", "손등", "목", "두피", "정강이", "가슴")

_FINDINGS = (
    "병변은 주변 피부와의 경계가 비교적 뚜렷하며 약간 융기되어 있습니다.",
    "표면은 대체로 매끄러우나 일부에서 미세한 인설이 관찰됩니다.",
    "색조는 비교적 균일하며 가장자리로 갈수록 조금 옅어지는 양상입니다.",
    "주변 피부에 뚜렷한 염증 반응이나 궤양은 보이지 않습니다.",
    "사진의 조명과 초점 때문에 표면의 세부 구조는 제한적으로만 평가됩니다.",
    "더모스코피 영상이 없어 색소망이나 혈관 패턴은 확인하기 어렵습니다.",
    "병변의 비대칭성은 뚜렷하지 않고 색의 다양성도 크지 않습니다.",
    "중앙부가 약간 함몰되어 있고 가장자리는 둥글게 말려 올라간 모양입니다.",
    "표면 일부에 가는 모세혈관 확장이 보이며 약한 광택이 있습니다.",
    "갈색에서 흑갈색까지 색조가 섞여 있으나 경계는 비교적 규칙적입니다.",
    "촉진 소견은 알 수 없으나 사진상 단단하고 고정된 결절로 보입니다.",
    "최근의 크기 변화, 출혈, 가려움이나 통증 여부를 함께 확인하는 것이 좋습니다.",
    "환자의 나이와 병변의 위치를 고려하면 이 부위에서 흔히 보이는 양상에 가깝습니다.",
    "사진만으로는 다른 병변을 완전히 배제할 수 없으므로 경과 관찰이 필요합니다.",
    "같은 부위에 비슷한 병변이 더 있는지 전신 피부 검사를 권합니다.",
    "햇빛 노출이 많은 부위라면 자외선 차단을 함께 권고합니다.",
)

_ADVICE = {
    "malignant": "악성 종양의 가능성이 있으므로 가능한 한 빨리 피부과 전문의의 진찰과 조직검사를 받을 것을 권합니다.",
    "premalignant": "전암성 병변일 수 있어 피부과 진료를 통해 치료 여부를 결정하는 것이 좋습니다.",
    "benign": "양성 병변으로 보이지만 모양이나 크기가 변하면 피부과 진료를 받으시기 바랍니다.",
}

_DISCLAIMER = "※ 이 결과는 참고용이며 최종 진단은 전문의의 진찰이 필요합니다."


def _josa(word: str, after_consonant: str, after_vowel: str) -> str:
    """`word` with the particle its last syllable calls for (을/를, 과/와)."""
    last = word[-1]
    final = "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0
    return word + (after_consonant if final else after_vowel)


def contract_answer(rng: random.Random, tokens: int = 320, code: int | None = None) -> str:
    """A complete contract answer of about `tokens` tokens: a random class (or class `code`), two similar, Korean
    findings. The random class is drawn either way, so that `code` changes no other draw of `rng`."""
    drawn = rng.choice(_CLASSES)
    code, name, risk = drawn if code is None else _CLASSES[code]
    (c1, n1, _), (c2, n2, _) = rng.sample([c for c in _CLASSES if c[0] != code], 2)
    score = rng.randint(45, 92)
    rest = 100 - score
    s1 = rng.randint(max(1, rest // 4), max(1, rest * 2 // 3))
    s2 = rng.randint(0, max(0, min(s1, rest - s1)))
    opener = f"사진상 {rng.choice(_SITES)}에 위치한 약 {rng.randint(3, 25)} mm 크기의 병변입니다."
    closing = (f"이러한 소견을 종합하면 {_josa(name, '을', '를')} 가장 먼저 의심하며, "
               f"{_josa(n1, '과', '와')} {_josa(n2, '을', '를')} 감별 진단으로 고려해야 합니다.")
    findings = list(_FINDINGS)
    rng.shuffle(findings)

    def render(middle: list[str]) -> str:
        summary = " ".join([opener, *middle, closing, _ADVICE[risk]])
        return (f'<root><label id_code="{code}" score="{score}">{name}</label><summary>{summary}</summary>'
                f'<similar_labels><similar_label id_code="{c1}" score="{s1}">{n1}</similar_label>'
                f'<similar_label id_code="{c2}" score="{s2}">{n2}</similar_label></similar_labels></root>'
                f"\n{_DISCLAIMER}")

    middle: list[str] = []
    size = count_tokens(render(middle))   # then add sentences' own counts: cheap, and right within a token
    while findings:   # add sentences while that brings the answer closer to `tokens`
        extra = count_tokens(" " + findings[-1])
        if abs(size + extra - tokens) >= abs(size - tokens):
            break
        middle.append(findings.pop())
        size += extra
    return render(middle)


def case_class(seed: int, messages: list, provider: str, differ_rate: float) -> int:
    """The class `provider` reads in the case `messages` describe: the case's own class, or in a share
    `differ_rate` of cases another one.

    The case is known by its user messages' text (not the system prompt, which a client may word per provider),
    so two providers asked about one case agree on it unless one of them is drawn to differ; both draws are
    seeded by (seed, case), and the second by the provider too, so a run replays.
    """
    texts = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        texts += [str(p.get("text") or "") for p in parts if isinstance(p, dict) and p.get("type") == "text"]
    case = hashlib.sha256("\n".join(texts).encode("utf-8", "replace")).hexdigest()[:16]
    own = random.Random(f"{seed}/case/{case}").randrange(len(_CLASSES))
    mine = random.Random(f"{seed}/case/{case}/{provider}")
    if mine.random() >= differ_rate:
        return own
    return mine.choice([c for c, _, _ in _CLASSES if c != own])


def ramble(tokens: list[str], total: int) -> list[str]:
    """A runaway answer: after the XML the model keeps repeating itself until `total` tokens."""
    filler = split_tokens("\n" + " ".join(_FINDINGS))
    out = list(tokens)
    while len(out) < total:
        out.extend(filler[:total - len(out)])
    return out
