"""Korean: the engine's messages by id (the same ids and {placeholders} as en/messages.py), written for clinic
staff, and the words and joins they are said with."""

from domain.locales.ko.provenance import MESSAGES as PROVENANCE_MESSAGES

_REDUCE_PIXELS = "더 작은 사진을 보내 주세요: 휴대폰 카메라의 기본 크기나 사진 편집기로 줄인 사진이면 됩니다."

MESSAGES: dict[str, str] = {
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
    "demo.not_in_set": "이 사례는 데모 사례가 아닙니다: 데모 모드에서는 데모 사례에만 예시 답변으로 답하며, AI "
                       "제공자에게 묻지 않습니다. 데모 사례: {cases}.",
    "demo.not_loaded": "데모 사례이지만 데모 팩이 불러와지지 않았습니다: `python cli.py demo load`를 실행하거나, "
                       "평가 페이지에서 데모 체험을 누르세요.",
    "demo.no_history": "데모 팩은 기록에 고정되는데, 기록이 꺼져 있습니다(HISTORY_ENABLED=false). 이때 데모 모드는 "
                       "팩 자체에서 데모 사례에 답하므로 불러오거나 뺄 것이 없습니다.",
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
    "assist.bad_refine": "모델이 서술을 돌려주지 않았습니다(다른 형식으로 답했습니다). 다시 시도하거나 직접 "
                         "수정하세요.",
    "assist.bad_explain": "모델이 환자용 설명을 돌려주지 않았습니다(다른 형식으로 답했습니다). 다시 시도하세요.",
    "job.unreadable": "이 작업은 다른 DATA_ENCRYPTION_KEY로 암호화되어 여기서 읽을 수 없습니다. 저장할 때 쓴 키를 "
                      "설정하거나(DATA_ENCRYPTION_KEY에는 쉼표로 구분해 여러 키를 넣을 수 있습니다) 사례를 다시 "
                      "제출하세요.",
    "job.store_down": "백그라운드 작업을 쓸 수 없습니다: {store}이(가) 응답하지 않습니다. 사례를 바로 평가하거나 "
                      "잠시 후 다시 시도하세요.",
    "job.restarted": "이 작업이 대기 중이거나 실행 중일 때 앱이 다시 시작되었습니다.",
    "job.process_gone": "이 작업을 실행하던 앱 프로세스가 멈췄습니다. 다시 실행하세요.",
    "job.never_started": "이 작업을 맡은 앱 프로세스가 작업을 시작하기 전에 멈췄습니다. 다시 실행하세요.",
    "job.unexpected": "예기치 않은 오류가 발생했습니다 ({error}).",
    "job.too_many_queued": "실행을 기다리는 백그라운드 작업이 이미 {limit}개 있습니다: 일부가 끝날 때까지 기다리거나 이 사례를 바로 평가하세요.",
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
    "batch.zip_lists_too_many": "사진 ZIP에 파일이 {listed:,}개 있습니다. 최대 {limit:,}개까지이니 여러 번으로 "
                                "나누세요.",
    "batch.zip_unreadable": "사진 ZIP을 읽을 수 없습니다 ({error}).",
    "batch.zip_too_many": "사진 ZIP에 파일이 {count:,}개 있습니다. 최대 {limit:,}개까지입니다.",
    "batch.zip_duplicate": "사진 ZIP에 이름이 '{name}'인 파일이 두 개 있습니다. 하나의 이름을 바꾸거나 지운 뒤 "
                           "다시 압축하세요.",
    "batch.zip_too_big": "사진 ZIP의 압축을 풀면 {size}입니다. 최대 {limit}까지이니 여러 번으로 나누세요.",
    "batch.zip_bomb": "사진 ZIP을 쓸 수 없습니다: '{name}'이(가) {packed}에서 {size}로 풀리는데, 사진은 이만큼 "
                      "압축되지 않습니다. 사진 파일 자체를 압축해 다시 시도하세요.",
    "batch.no_directory": "사진 폴더 {path}이(가) 없거나 폴더가 아닙니다.",
    "batch.directory_too_many": "사진 폴더 {path}에 파일이 {limit:,}개보다 많습니다. 이번 일괄 평가의 사진이 있는 "
                                "폴더를 지정하세요.",
    "batch.csv_encoding": "사례 파일이 UTF-8도 CP949도 아닙니다. 'CSV UTF-8' 형식으로 저장하세요.",
    "batch.csv_too_big": "사례 파일이 {size}로, 사례 {limit:,}개에 필요한 크기({most})보다 큽니다. 여러 파일로 "
                         "나누세요.",
    "batch.csv_empty": "사례 파일이 비어 있습니다. 첫 줄에 id,text,image,expected 머리글이 있어야 합니다.",
    "batch.csv_missing_column": "사례 파일에 {columns} 열이 없습니다. 머리글은 id,text,image,expected여야 합니다 "
                                "(파일의 머리글: {found}).",
    "batch.csv_missing_columns": "사례 파일에 {columns} 열이 없습니다. 머리글은 id,text,image,expected여야 합니다 "
                                 "(파일의 머리글: {found}).",
    "batch.csv_no_header": "사례 파일에 {columns} 열이 없습니다. 머리글은 id,text,image,expected여야 합니다 "
                           "(파일의 첫 줄이 비어 있음).",
    "batch.csv_invalid": "사례 파일의 {line}번째 줄이 올바른 CSV가 아닙니다: {error}.",
    "batch.no_cases": "사례 파일에 머리글만 있고 사례가 없습니다.",
    "batch.too_many_cases": "사례 파일에 사례가 {count:,}개 있습니다. 최대 {limit:,}개까지입니다 (BATCH_MAX_CASES). "
                            "여러 파일로 나누거나 한도를 올리세요 (명령줄: --max-cases {count}).",
    "batch.no_provider": "제공자를 하나 이상 고르세요: {choices}.",
    "batch.unknown_provider": "알 수 없는 제공자 '{name}'입니다. 다음 중에서 고르세요: {choices}.",
    "batch.cannot_resume": "{path}에서 이어서 실행할 수 없습니다: {error}",
    "batch.not_results": "{path}은(는) 이 도구가 쓴 results.csv가 아닙니다 (머리글이 다름). 다른 출력 폴더를 "
                         "고르거나 --resume 없이 실행하세요.",
    "batch.other_provider": "{path}에 다른 일괄 평가의 행이 있습니다 (제공자 '{name}'이(가) 이번 실행에 없음). 같은 "
                            "사례와 제공자로 이어서 실행하거나 다른 출력 폴더를 고르세요.",
    "batch.other_case": "{path}에 다른 일괄 평가의 행이 있습니다 (사례 '{name}'이(가) 이번 실행에 없음). 같은 "
                        "사례와 제공자로 이어서 실행하거나 다른 출력 폴더를 고르세요.",
    "batch.row_empty": "빈 행: 'text'에 설명을 쓰거나 'image'에 사진 파일 이름을 쓰세요",
    "batch.row_unknown_image": "알 수 없는 사진 파일 '{image}': 받은 사진 {count}장 중에 없습니다",
    "batch.row_unknown_image_one": "알 수 없는 사진 파일 '{image}': 받은 사진 {count}장 중에 없습니다",
    "batch.row_bad_expected": "잘못된 expected 값 '{value}': 0부터 14까지의 분류 코드를 쓰세요 (비워도 됩니다)",
    "batch.row_repeated_id": "id '{id}'이(가) 다시 쓰였습니다 (처음: {first}번째 줄). id는 서로 달라야 합니다",
    "review.unknown_verdict": "알 수 없는 판정 '{verdict}'입니다. 다음 중 하나를 쓰세요: {choices}.",
    "review.unknown_class": "알 수 없는 예상 분류 {code}입니다. 0부터 14까지의 분류 코드를 쓰세요.",
    "review.not_in_history": "평가 {assessment_id}이(가) 기록에 없어 리뷰할 수 없습니다.",
    # 이중 판독 (domain/readings.py, storage/readings.py, engine/second_reading.py).
    "reading.no_class": "두 번째 판독자의 답에 분류가 없습니다.",
    "reading.unavailable": "두 번째 판독이 오지 않았습니다.",
    "reading.interrupted": "두 번째 판독이 중단되었습니다 (앱이 다시 시작되었거나 작업을 실행하지 못했습니다).",
    "reading.note_too_long": "메모가 {limit}자를 넘습니다. 줄여 주세요.",
    "answer.code_not_listed": "{part}{rank}: 코드 {code}은(는) 15개 분류에 없어 이름을 사용함",
    "answer.unknown_class": "{part}{rank}: 코드도 이름도 15개 분류에 없음",
    "answer.name_mismatch": "{part}{rank}: 이름이 코드 {code}와 맞지 않아 코드를 사용함",
    "answer.unknown_name": "{part}{rank}: 코드 {code}의 이름을 알 수 없음",
    "answer.no_score": "{part}{rank}: 점수 없음",
    "answer.score_clamped": "{part}{rank}: 점수 {score:g}이(가) 0-100 밖이라 범위 안으로 맞춤",
    "answer.no_label": "label 요소 없음",
    "answer.no_xml": "답변에 XML이 없음",
    "answer.no_summary": "소견(summary)이 없거나 잘림",
    "answer.cut_off": "답변이 </root> 전에 끊김",
    "answer.too_long": "답변이 {kb:g} KB에서 잘림: 완전한 답변보다 훨씬 김",
    **PROVENANCE_MESSAGES,
}

# 관리자가 아닌 사람이 대신 읽는 말 (ui/i18n.py): 변수, `.env`, 내부 주소 없이.
PLAIN: dict[str, str] = {
    "provider.not_configured.plain": "{title}이(가) 설정되지 않았습니다. 관리자에게 문의하세요.",
    "provider.not_configured_others.plain": "{title}이(가) 설정되지 않았습니다 (관리자에게 문의하세요). "
                                            "지금 쓸 수 있는 제공자: {others}.",
    "provider.auth.plain": "{title}이(가) 앱의 접근 키를 거부했습니다 (HTTP {status}). 관리자에게 알리세요.",
    "provider.unknown_model.plain": "{title}이(가) 앱에 설정된 모델을 알지 못합니다 (HTTP 404). 관리자에게 알리세요.",
    "provider.unreachable.plain": "{title}에 연결할 수 없습니다. 잠시 후 다시 시도하고, 계속되면 관리자에게 알리세요.",
    "provider.unreachable_url.plain": "{title}에 연결할 수 없습니다. 잠시 후 다시 시도하고, 계속되면 관리자에게 "
                                      "알리세요.",
    "demo.not_loaded.plain": "데모 사례이지만 데모 사례가 불러와지지 않았습니다: 평가 페이지에서 데모 체험을 누르세요.",
    "demo.no_history.plain": "데모 사례는 기록에 보관되는데, 여기서는 기록이 꺼져 있어 불러오지 않고 답합니다.",
    "job.unreadable.plain": "이 작업은 다른 암호화 키로 저장되어 여기서 읽을 수 없습니다. 사례를 다시 제출하거나 "
                            "관리자에게 문의하세요.",
}

WORDS: dict[str, str] = {
    "word.field.description": "설명",
    "word.field.body_site": "부위",
    "word.field.duration": "기간",
    "word.field.sex": "성별",
    "word.answer_part.label": "분류",
    "word.answer_part.similar": "유사 병변",
    "word.job_store.redis": "공유 작업 저장소(Redis, REDIS_URL)",
    "word.job_store.database": "작업을 보관하는 데이터베이스",
    "word.image_format.gif": "GIF 이미지",
    "word.image_format.tiff": "TIFF 이미지",
    "word.image_format.bmp": "BMP 이미지",
    "word.image_format.eps": "PostScript(EPS) 파일",
    "word.image_format.pdf": "PDF",
    "word.image_format.jpeg2000": "JPEG 2000 이미지",
    "word.image_format.avif": "AVIF 이미지",
}

JOINS: dict[str, str] = {
    "message.also": "{first} 그 밖에: {others}",
    "message.list_join": ", ",
}

TEXT: dict[str, str] = {**MESSAGES, **PLAIN, **WORDS, **JOINS}
