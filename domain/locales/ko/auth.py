"""Korean: sign-in, sign-out and the session (ui/auth.py).

The keys of domain/locales/en/auth.py, with the same {placeholders}.
"""

TEXT: dict[str, str] = {
    # ui/auth.py
    "auth.off": "로그인이 꺼져 있습니다 (AUTH_MODE=off): 이 주소를 여는 누구나 모든 기록을 봅니다. 개발용으로만 사용하세요.",
    "auth.admin": " (관리자)",
    "auth.signed_in_as": "로그인: **{user}**{role}",
    "auth.sign_out": "로그아웃",
    "auth.idle": "{minutes:g}분 동안 사용하지 않아 로그아웃되었습니다. 다시 로그인하세요.",
    "auth.lifetime": "로그인한 지 {hours:g}시간이 지나 세션이 끝났습니다. 다시 로그인하세요.",
    "auth.ended": "세션이 끝났습니다 (다른 탭에서 로그아웃했거나 관리자가 끝냈습니다). 다시 로그인하세요.",
    "auth.signed_out": "로그아웃했습니다.",
    "auth.store_down": "로그인 데이터베이스를 사용할 수 없습니다: 지금은 이름과 비밀번호를 확인할 수 없습니다. 잠시 뒤 다시 시도하고, 계속되면 관리자에게 알리세요.",
    "auth.removed": "이 계정은 삭제되었습니다.",
    "auth.sign_in": "로그인",
    "auth.no_users": "아직 사용자 계정이 없습니다. 서버에서 앱 폴더에 들어가 첫 관리자 계정을 만드세요 (비밀번호를 두 번 묻습니다, 8자 이상):",
    "auth.no_users_then": "그다음 이 페이지를 새로고침하세요. 개발 중에만 AUTH_MODE=off로 로그인을 끌 수 있습니다.",
    "auth.user_name": "사용자 이름",
    "auth.password": "비밀번호",
    "auth.wait_seconds": "{n}초",
    "auth.wait_minutes": "약 {n}분",
    "auth.missing_fields": "이름과 비밀번호를 입력하세요.",
    "auth.too_many_address": "이 주소에서 로그인 실패가 너무 많습니다. {wait} 기다린 뒤 다시 시도하세요.",
    "auth.locked": "로그인 실패가 너무 많아 이 계정은 {until}까지 (약 {minutes}분) 잠겼습니다.",
    "auth.wrong": "사용자 이름 또는 비밀번호가 맞지 않습니다.",
    "auth.retry_wait": "다음 시도까지 {wait} 기다리세요.",
    "auth.no_authlib": "AUTH_MODE=oidc에는 Authlib가 필요합니다: `.venv/bin/pip install \"Authlib>=1.3.2\"`",
    "auth.secrets_missing": "`.streamlit/secrets.toml`의 `[auth]`에 {keys}이(가) 없습니다. `.streamlit/secrets.toml.example`을 참고하세요.",
    "auth.no_identity": "신원 제공자가 이메일이나 이름을 보내지 않았습니다. 관리자에게 문의하세요.",
    "auth.oidc_sign_in": "기관 계정으로 로그인",
    "auth.store_down_grace": "데이터베이스를 사용할 수 없습니다: 기록 없이 작업합니다. 평가는 계속되지만 기록되지 않으며, 입력한 내용은 이 화면에 남습니다.",
    "auth.account_throttled": "이 계정에 처음 보는 기기에서 로그인 실패가 너무 많습니다. {wait} 기다리거나, 전에 로그인한 적이 있는 기기에서 로그인하세요.",
}
