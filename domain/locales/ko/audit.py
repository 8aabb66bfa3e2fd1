"""한국어: 감사 기록 페이지 (app_pages/audit.py), 관리자용."""

TEXT: dict[str, str] = {
    # main.py
    "nav.audit": "감사 기록",
    # app_pages/audit.py
    "audit.title": "감사 기록",
    "audit.caption": "누가 언제 로그인하고 무엇을 열람, 검색, 내보내기 또는 삭제했는지 기록합니다. 각 이벤트는 바로 앞 "
                     "이벤트와 연결되어 있어, 바뀌거나 지워지거나 순서가 바뀐 이벤트는 검사할 때 드러납니다. 이벤트는 "
                     "{days:g}일 동안 보관됩니다 (AUDIT_RETENTION_DAYS). 환자 정보 텍스트는 기록하지 않습니다.",
    "audit.admins_only": "감사 기록은 관리자만 볼 수 있습니다.",
    "audit.filter.dates": "날짜",
    "audit.filter.user": "사용자 또는 토큰 ID",
    "audit.filter.case": "사례 ID",
    "audit.filter.action": "작업",
    "audit.filter.all": "전체",
    "audit.verify": "연결 검사",
    "audit.verify_ok": "연결이 온전합니다: 이벤트 {n}개를 검사했습니다.",
    "audit.verify_bad": "이벤트 #{seq}에서 연결이 끊어졌습니다: {problem}",
    "audit.empty": "조건에 맞는 감사 이벤트가 없습니다.",
    "audit.count": "이벤트 {n}개 표시 (최신순, 최대 {limit}개).",
    "audit.col.seq": "#",
    "audit.col.time": "시각",
    "audit.col.action": "작업",
    "audit.col.outcome": "결과",
    "audit.col.actor": "수행자",
    "audit.col.user": "사용자 계정",
    "audit.col.address": "주소",
    "audit.col.cases": "사례",
    "audit.col.detail": "세부 정보",
    "audit.outcome.success": "성공",
    "audit.outcome.failure": "실패",
    "audit.local": "이 컴퓨터",
}
