"""The engine's messages (domain/messages.py) in every UI language, by message id.

English is the engine's own text (`domain.messages.ENGLISH`), so the two cannot drift apart; Korean is
written here for clinic staff. Each language has its templates (the same {placeholders} as the English),
its words for word parameters ("body site", "a GIF image"), how it joins a list and how it adds further
failures after the first. tests/test_error_messages.py checks that every id has a text in each language.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.messages import ALSO, ENGLISH, ENGLISH_WORDS


@dataclass(frozen=True)
class Language:
    """One language's tables for `domain.messages.render`."""

    templates: dict[str, str]
    words: dict[str, str]
    also: str
    list_join: str


_REDUCE_PIXELS = "더 작은 사진을 보내 주세요: 휴대폰 카메라의 기본 크기나 사진 편집기로 줄인 사진이면 됩니다."

KOREAN: dict[str, str] = {
    "provider.not_configured": "{title}이(가) 설정되지 않았습니다: .env에 {variables}을(를) 설정하세요.",
    "provider.not_configured_others": "{title}이(가) 설정되지 않았습니다: .env에 {variables}을(를) 설정하세요. "
                                      "지금 설정된 제공자: {others}.",
    "provider.timeout": "{title}이(가) 제시간에 답변하지 않았습니다.",
    "provider.auth": "{title}이(가) API 키를 거부했습니다 (HTTP {status}): .env의 {variable}을(를) 확인하세요.",
    "provider.auth_server": "{title}이(가) API 키를 거부했습니다 (HTTP {status}): 서버의 접근 설정을 확인하세요.",
    "provider.unknown_model": "{title}이(가) 모델 '{model}'을(를) 알지 못하거나 URL이 잘못되었습니다 (HTTP 404): "
                              ".env의 {variables}을(를) 확인하세요.",
    "provider.rate_limited": "{title}이(가) 요청 수를 제한하고 있습니다 (HTTP 429).",
    "provider.failed": "{title} 쪽에서 오류가 났습니다 (HTTP {status}).",
    "provider.refused": "{title}이(가) 요청을 거부했습니다 (HTTP {status}).",
    "provider.dropped": "{title}이(가) 답변 도중 연결을 끊었습니다.",
    "provider.unreachable": "{title}({host})에 연결할 수 없습니다: 서버가 실행 중인지, {variable} 값이 맞는지 "
                            "확인하세요.",
    "provider.unreachable_url": "{title}({host})에 연결할 수 없습니다: 서버가 실행 중인지, URL이 맞는지 확인하세요.",
    "provider.unreadable": "{title}의 답변을 앱이 읽을 수 없었습니다 ({error}).",
    "provider.over_budget": "{title}이(가) 제한 시간 {budget:g}초 안에 답변하지 않았습니다.",
    "routing.over_budget": "제한 시간 {budget:g}초 안에 답변을 받지 못했습니다 (시도한 제공자: {titles}).",
    "demo.store_down": "데모 모드는 기록 데이터베이스에 고정된 사례를 재생하는데, 지금 데이터베이스가 응답하지 "
                       "않습니다. 잠시 후 다시 시도하세요.",
    "demo.not_pinned": "데모 모드는 고정된 사례만 재생하며, 이 사례는 고정되어 있지 않습니다. 고정된 사례를 "
                       "고르거나, AI 제공자에게 물으려면 DEMO_MODE=false로 설정하세요.",
    "input.unknown_provider": "알 수 없는 제공자 '{name}'입니다. 다음 중에서 고르세요: {choices}.",
    "input.no_photos": "{title}은(는) 사진을 받지 않습니다. 다른 제공자를 고르거나 병변을 글로 설명하세요.",
    "input.empty": "병변 사진을 올리거나 글로 설명하세요 (둘 중 하나면 충분합니다).",
    "input.text_too_long": "설명이 {chars:,}자입니다. 최대 {limit:,}자까지 입력할 수 있으니 줄여 주세요.",
    "input.field_too_long": "{field} 항목이 {chars:,}자입니다. 최대 {limit}자까지 입력할 수 있으니 줄여 주세요.",
    "input.field_not_text": "{field} 항목에 글자로 읽을 수 없는 문자가 있습니다 (인코딩이 깨졌을 수 있습니다). "
                            "다시 입력하세요.",
    "input.unknown_language": "알 수 없는 언어 '{language}'입니다. 다음 중 하나를 쓰세요: {choices}.",
    "assist.nothing_to_refine": "먼저 환자의 설명을 입력하세요. 다듬을 내용이 없습니다.",
    "assist.nothing_to_explain": "이 답변에는 병변 분류가 없어 설명할 내용이 없습니다. 먼저 다시 평가하세요.",
    "job.unreadable": "이 작업은 다른 DATA_ENCRYPTION_KEY로 암호화되어 여기서 읽을 수 없습니다. 저장할 때 쓴 키를 "
                      "설정하거나(DATA_ENCRYPTION_KEY에는 쉼표로 구분해 여러 키를 넣을 수 있습니다) 사례를 다시 "
                      "제출하세요.",
    "job.store_down": "백그라운드 작업을 쓸 수 없습니다: {store}이(가) 응답하지 않습니다. 사례를 바로 평가하거나 "
                      "잠시 후 다시 시도하세요.",
    "job.restarted": "이 작업이 대기 중이거나 실행 중일 때 앱이 다시 시작되었습니다.",
    "job.process_gone": "이 작업을 실행하던 앱 프로세스가 멈췄습니다. 다시 실행하세요.",
    "job.never_started": "이 작업을 맡은 앱 프로세스가 작업을 시작하기 전에 멈췄습니다. 다시 실행하세요.",
    "job.unexpected": "예기치 않은 오류가 발생했습니다 ({error}).",
    "image.no_heic": "이 서버는 HEIC 사진을 읽을 수 없습니다. 사진을 JPEG로 보내 주세요 (iPhone: 설정 > 카메라 > "
                     "포맷 > 높은 호환성).",
    "image.other_format": "이 파일은 앱이 읽을 수 있는 사진(JPEG, PNG, WebP, HEIC)이 아닌 {format}입니다. "
                          "사진을 JPEG로 저장한 뒤 다시 고르세요.",
    "image.not_a_photo": "이 파일은 앱이 읽을 수 있는 사진(JPEG, PNG, WebP, HEIC)이 아닙니다. 사진 파일 자체를 "
                         "고르세요.",
    "image.empty": "사진 파일이 비어 있습니다 (0바이트). 사진을 다시 고르세요.",
    "image.too_large": "사진 크기가 {size}입니다. 최대 {limit}까지 보낼 수 있으니 더 작은 사진을 보내 주세요.",
    "image.too_many_pixels_sized": "사진이 {width}×{height} 픽셀({megapixels}메가픽셀)로, 한도인 {limit}메가픽셀을 "
                                   "넘습니다. " + _REDUCE_PIXELS,
    "image.too_many_pixels": "사진이 {megapixels}메가픽셀로, 한도인 {limit}메가픽셀을 넘습니다. " + _REDUCE_PIXELS,
    "image.too_many_pixels_over": "사진이 {megapixels}메가픽셀을 넘어, 한도인 {limit}메가픽셀보다 큽니다. "
                                  + _REDUCE_PIXELS,
    "image.damaged": "사진 파일이 손상되었거나 일부만 있습니다. 다시 촬영하거나 올려 주세요.",
}

KOREAN_WORDS: dict[str, str] = {
    "field.description": "설명", "field.body_site": "부위", "field.duration": "기간", "field.sex": "성별",
    "job_store.redis": "공유 작업 저장소(Redis, REDIS_URL)", "job_store.database": "작업을 보관하는 데이터베이스",
    "image_format.gif": "GIF 이미지", "image_format.tiff": "TIFF 이미지", "image_format.bmp": "BMP 이미지",
    "image_format.eps": "PostScript(EPS) 파일", "image_format.pdf": "PDF", "image_format.jpeg2000": "JPEG 2000 이미지",
    "image_format.avif": "AVIF 이미지",
}

LANGUAGES: dict[str, Language] = {
    "ko": Language(KOREAN, KOREAN_WORDS, also="{first} 그 밖에: {others}", list_join=", "),
    "en": Language(ENGLISH, ENGLISH_WORDS, also=ALSO, list_join=" and "),
}

# What the History page shows for an assessment no provider answered: its error class, named in each language.
ERROR_KINDS: dict[str, dict[str, str]] = {
    "ProviderNotConfigured": {"ko": "제공자가 설정되지 않음", "en": "Provider not configured"},
    "ProviderAuthError": {"ko": "API 키가 거부됨", "en": "API key rejected"},
    "ProviderRequestError": {"ko": "제공자가 요청을 거부함", "en": "Request refused by the provider"},
    "ProviderRateLimited": {"ko": "요청 수 제한", "en": "Rate limited"},
    "ProviderTimeout": {"ko": "제한 시간 안에 답변 없음", "en": "No answer in time"},
    "ProviderUnavailable": {"ko": "제공자에 연결할 수 없거나 제공자 쪽 오류", "en": "Provider unreachable or failing"},
    "ProviderError": {"ko": "제공자 오류", "en": "Provider error"},
}
