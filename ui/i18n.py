"""The UI's words in Korean and English; the language is chosen in the sidebar."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from domain.answer import ParsedAnswer
from domain.messages import Message, Said, render
from ui.messages import ERROR_KINDS, LANGUAGES

LANGUAGE_NAMES = {"ko": "한국어", "en": "English"}

STRINGS: dict[str, dict[str, str]] = {
    "auth.account_throttled": {"ko": "이 계정에 처음 보는 기기에서 로그인 실패가 너무 많습니다. {wait} 기다리거나, 전에 "
                                     "로그인한 적이 있는 기기에서 로그인하세요.",
                               "en": "Too many failed sign-ins at this account from new devices: wait {wait}, or "
                                     "sign in on a device you have signed in on before."},
    "app.title": {"ko": "피부 병변 AI 평가", "en": "Skin lesion AI assessment"},
    "nav.diagnose": {"ko": "병변 평가", "en": "Assess a lesion"},
    "sidebar.language": {"ko": "언어", "en": "Language"},
    "sidebar.provider": {"ko": "AI 제공자", "en": "AI provider"},
    "sidebar.auto": {"ko": "자동 (사진: {image}, 텍스트: {text})", "en": "Automatic (photos: {image}, text: {text})"},
    "sidebar.status": {"ko": "제공자 설정 상태", "en": "Provider set-up"},
    "sidebar.ready": {"ko": "준비됨 · {model}", "en": "ready · {model}"},
    "sidebar.none": {"ko": "설정된 AI 제공자가 없습니다. `.env`에 아래 변수를 설정하고 앱을 다시 시작하세요.",
                     "en": "No AI provider is configured. Set the variables below in `.env` and restart the app."},
    "sidebar.setup": {"ko": "`.env`에 {variables} 설정 필요", "en": "set {variables} in .env"},
    "sidebar.no_photos": {"ko": "사진 불가", "en": "no photos"},
    "input.photo": {"ko": "병변 사진 (JPEG, PNG, WebP, HEIC)", "en": "Lesion photo (JPEG, PNG, WebP, HEIC)"},
    "input.use_camera": {"ko": "카메라로 촬영", "en": "Take a photo with the camera"},
    "input.camera": {"ko": "병변 촬영", "en": "Photograph the lesion"},
    "input.text": {"ko": "증상 및 소견", "en": "Symptoms and findings"},
    "input.text_help": {"ko": "사진만, 설명만, 또는 둘 다 입력할 수 있습니다.",
                        "en": "A photo, a description, or both: either is enough."},
    "input.text_placeholder": {"ko": "예: 코 옆 5mm 크기의 진주빛 구진, 6개월간 서서히 커짐, 가끔 출혈",
                               "en": "e.g. 5 mm pearly papule beside the nose, slowly growing for 6 months, bleeds at times"},
    "input.info": {"ko": "추가 정보 (선택)", "en": "Additional information (optional)"},
    "input.age": {"ko": "나이", "en": "Age"},
    "input.sex": {"ko": "성별", "en": "Sex"},
    "input.site": {"ko": "부위", "en": "Body site"},
    "input.duration": {"ko": "기간", "en": "Duration"},
    "sex.": {"ko": "—", "en": "—"},
    "sex.female": {"ko": "여성", "en": "female"},
    "sex.male": {"ko": "남성", "en": "male"},
    "sex.other": {"ko": "기타", "en": "other"},
    "action.assess": {"ko": "평가하기", "en": "Assess"},
    "action.rerun": {"ko": "캐시 없이 다시 평가", "en": "Re-run without cache"},
    "action.background": {"ko": "백그라운드로 실행", "en": "Run in background"},
    "action.background_help": {"ko": "평가를 작업으로 보내고 다른 일을 계속하세요. 결과는 작업 목록에 남습니다.",
                                "en": "Send the assessment to a job and keep working; the result waits in Jobs."},
    "action.open_job": {"ko": "작업을 보냈습니다 — 작업 목록에서 보기", "en": "Job submitted — open it in Jobs"},
    "action.pin": {"ko": "데모용으로 고정", "en": "Pin for demos"},
    "action.pinned": {"ko": "고정됨: 데모 모드에서 이 답변을 재생합니다.", "en": "Pinned: demo mode replays this answer."},
    "demo.banner": {"ko": "데모 모드: 고정된 사례의 저장된 답변을 재생합니다. AI 제공자에게 묻지 않습니다.",
                    "en": "Demo mode: replaying the stored answers of pinned cases. No AI provider is asked."},
    "result.replayed": {"ko": "데모 재생 (저장된 답변)", "en": "demo replay (stored answer)"},
    "nav.jobs": {"ko": "작업", "en": "Jobs"},
    "nav.history": {"ko": "기록", "en": "History"},
    "nav.qa": {"ko": "제공자 QA", "en": "Provider QA"},
    "nav.performance": {"ko": "성능", "en": "Performance"},
    "tool.refine": {"ko": "임상 서술로 다듬기", "en": "Refine into a clinical description"},
    "tool.refine_help": {"ko": "환자의 표현을 간결한 임상 서술로 바꿉니다. 원문은 바꾸지 않습니다.",
                         "en": "Rewrites the patient's words as a concise clinical description; your text stays."},
    "tool.use_refined": {"ko": "이 서술 사용", "en": "Use this description"},
    "tool.refined": {"ko": "다듬은 서술", "en": "Refined description"},
    "tool.explain": {"ko": "환자용 설명 만들기", "en": "Explain for the patient"},
    "tool.explained": {"ko": "환자용 설명", "en": "For the patient"},
    "action.working": {"ko": "{provider}에 평가를 요청하는 중…", "en": "Asking {provider} for an assessment…"},
    "photo.shrunk": {"ko": "전송될 사진", "en": "Photo as sent"},
    "photo.via_browser": {"ko": "이 기기에서 축소함 ({before} → {after} 전송), 서버에서 다시 확인함",
                          "en": "shrunk on this device ({before} → {after} sent), checked again on the server"},
    "photo.via_server": {"ko": "서버에서 축소함:", "en": "shrunk on the server:"},
    "photo.via_server_cannot_read": {"ko": "이 브라우저가 이 형식(HEIC 등)을 읽지 못해 원본을 보내 서버에서 축소함:",
                                     "en": "this browser cannot read this format (HEIC?), so the photo was sent whole "
                                           "and shrunk on the server:"},
    "photo.via_server_unsupported": {"ko": "이 브라우저는 사진 축소를 지원하지 않아 원본을 보내 서버에서 축소함:",
                                     "en": "this browser cannot shrink photos, so the photo was sent whole and "
                                           "shrunk on the server:"},
    "photo.removed": {"ko": "{items} 제거됨", "en": "{items} removed"},
    "photo.metadata.location data": {"ko": "위치 정보", "en": "location data"},
    "photo.metadata.camera data": {"ko": "카메라 정보", "en": "camera data"},
    "photo.metadata.XMP": {"ko": "XMP", "en": "XMP"},
    "photo.metadata.comment": {"ko": "주석", "en": "comment"},
    "photo.other_ways": {"ko": "다른 방법: 원본 그대로 업로드", "en": "Other ways: upload the file as it is"},
    "photo.other_ways_help": {"ko": "위의 사진 선택이 동작하지 않을 때 쓰세요. 파일 전체를 보내고 서버에서 축소합니다.",
                              "en": "For when the picker above does not work: the whole file is sent and shrunk "
                                    "on the server."},
    "photo.not_sent": {"ko": "사진이 받아들여지지 않아 아무것도 보내지 않았습니다. 다른 사진을 고르거나, 설명만으로 평가하려면 "
                             "사진을 지우세요.",
                       "en": "The photo was not accepted, so nothing was sent. Choose another photo, or remove it to "
                             "assess the description alone."},
    "picker.choose": {"ko": "사진 선택", "en": "Choose a photo"},
    "picker.camera": {"ko": "후면 카메라로 촬영", "en": "Take a photo"},
    "picker.drop": {"ko": "또는 사진을 여기로 끌어다 놓으세요. 사진은 이 기기에서 축소된 뒤 전송됩니다.",
                    "en": "or drop a photo here. It is shrunk on this device before it is sent."},
    "picker.remove": {"ko": "사진 지우기", "en": "Remove photo"},
    "picker.preview": {"ko": "전송될 사진 미리보기", "en": "Preview of the photo to send"},
    "picker.working": {"ko": "이 기기에서 사진을 축소하는 중…", "en": "Shrinking the photo on this device…"},
    "picker.shrunk": {"ko": "이 기기에서 축소함: {before} → {after} 전송 ({saved}% 절약)",
                      "en": "Shrunk on this device: {before} → {after} sent ({saved}% saved)"},
    "picker.cannot_read": {"ko": "이 브라우저는 이 사진({type})을 읽지 못합니다. 원본({size})을 보내 서버에서 축소합니다.",
                           "en": "This browser cannot read this photo ({type}): it is sent whole ({size}) and "
                                 "shrunk on the server."},
    "picker.unsupported": {"ko": "이 브라우저는 사진 축소를 지원하지 않습니다. 원본({size})을 보내 서버에서 축소합니다.",
                           "en": "This browser cannot shrink photos: it is sent whole ({size}) and shrunk on the "
                                 "server."},
    "picker.failed": {"ko": "이 사진을 처리하지 못했습니다. 다시 선택하거나 아래 ‘다른 방법’을 쓰세요.",
                      "en": "This photo could not be processed. Choose it again, or use “Other ways” below."},
    "error.kept": {"ko": "입력한 내용은 그대로 남아 있습니다. 다시 시도하려면 버튼을 누르세요.",
                   "en": "Your inputs are kept: press the button to try again."},
    "error.settings": {"ko": "설정 오류", "en": "Settings error"},
    "result.title": {"ko": "평가 결과", "en": "Assessment"},
    "result.score": {"ko": "점수 {score:.0f} / 100", "en": "score {score:.0f} / 100"},
    "result.code": {"ko": "코드 {code}", "en": "code {code}"},
    "result.findings": {"ko": "소견", "en": "Findings"},
    "result.similar": {"ko": "유사 병변", "en": "Similar classes"},
    "result.none_similar": {"ko": "유사 병변이 제시되지 않았습니다.", "en": "No similar classes were given."},
    "result.malignant": {"ko": "악성 병변 가능성: 피부과 전문의 진료를 의뢰하세요.",
                         "en": "Malignant class: refer for dermatology review."},
    "result.premalignant": {"ko": "전암성 병변 가능성: 피부과 추적 관찰 또는 진료를 고려하세요.",
                            "en": "Premalignant class: consider dermatology follow-up."},
    "result.incomplete": {"ko": "불완전한 답변입니다. 결과를 그대로 신뢰하지 말고 다시 평가하세요. ({problems})",
                          "en": "The answer is incomplete: do not rely on it; re-run the assessment. ({problems})"},
    "result.no_label": {"ko": "답변에서 병변 분류를 읽을 수 없었습니다.", "en": "No lesion class could be read from the answer."},
    "result.raw": {"ko": "원본 답변", "en": "Raw answer"},
    "result.streaming": {"ko": "소견 작성 중…", "en": "Writing findings…"},
    "result.disclaimer": {"ko": "이 결과는 AI의 참고 의견이며 진단이 아닙니다. 최종 판단은 의료진이 내립니다.",
                          "en": "This is an AI's supporting opinion, not a diagnosis. The clinician makes the decision."},
    "result.cached": {"ko": "캐시", "en": "cached"},
    "result.fresh": {"ko": "새 답변", "en": "fresh"},
    "result.first_words": {"ko": "첫 응답 {seconds:.1f}초", "en": "first words {seconds:.1f} s"},
    "result.fallback": {"ko": "대체 제공자가 답변했습니다 (시도: {tried}).", "en": "A fallback provider answered (tried: {tried})."},
    "result.hedged": {"ko": "응답이 늦어 다른 제공자에게 동시에 요청했고, {provider}이(가) 먼저 답변했습니다.",
                      "en": "The first provider was slow, so another was asked in parallel; {provider} answered first."},
    "result.tokens": {"ko": "토큰 {prompt}+{completion}", "en": "{prompt}+{completion} tokens"},
    "result.not_recorded": {"ko": "기록되지 않음: 기록 데이터베이스를 사용할 수 없습니다.",
                            "en": "Not recorded: the history database is unavailable."},
    "store.down": {"ko": "기록 데이터베이스를 사용할 수 없습니다. 평가는 계속 받을 수 있지만 기록되지 않습니다. "
                         "잠시 후 다시 시도하세요.",
                   "en": "The history database is unavailable. Assessments still answer, but they are not recorded. "
                         "Try again in a moment."},
    "risk.malignant": {"ko": "악성", "en": "malignant"},
    "risk.premalignant": {"ko": "전암성", "en": "premalignant"},
    "risk.benign": {"ko": "양성", "en": "benign"},
}


def lang() -> str:
    """The language the clinician chose ('ko' until they change it)."""
    return st.session_state.get("lang", "ko")


def t(key: str, **values) -> str:
    """The string `key` in the chosen language, formatted with `values`."""
    text = STRINGS[key][lang()]
    return text.format(**values) if values else text


def tr(ko: str, en: str, **values) -> str:
    """An inline string in both languages, for words only one page uses: tr("기록", "History")."""
    text = ko if lang() == "ko" else en
    return text.format(**values) if values else text


def message_text(message: Message, fallback: str | None = None) -> str:
    """`message` (an engine message id with its values) in the chosen language.

    An id or word this version has no text for (a job stored by a newer release) shows `fallback`, else the
    English text, else the id: never nothing.
    """
    language = LANGUAGES[lang()]
    try:
        return render(message, language.templates, language.words, also=language.also,
                      list_join=language.list_join)
    except (KeyError, ValueError, IndexError):
        if fallback:
            return fallback
        try:
            return str(message)
        except (KeyError, ValueError, IndexError):
            return message.code


def error_text(exc: BaseException) -> str:
    """An exception as the clinician reads it: an engine error (a photo refusal, a refused batch file or review) in
    the chosen language, any other exception as its own text."""
    if isinstance(exc, Said):  # the engine's errors, a batch's files, a review's values
        return message_text(exc.message, str(exc)) if exc.message else str(exc)
    code, params = getattr(exc, "code", None), getattr(exc, "params", None)
    if isinstance(code, str) and isinstance(params, Mapping):  # utils.images.ImageRejected
        return message_text(Message(code, params), str(exc))
    return str(exc)


def problems_text(answer: ParsedAnswer) -> str:
    """What the parser could not read in `answer`, in the chosen language ('?' when it said nothing)."""
    said = [message_text(m) for m in answer.problem_messages] or list(answer.problems)
    return "; ".join(said) or "?"


def error_kind(name: str) -> str:
    """The History page's name for an error class ('ProviderTimeout'), in the chosen language."""
    return ERROR_KINDS[name][lang()] if name in ERROR_KINDS else name
