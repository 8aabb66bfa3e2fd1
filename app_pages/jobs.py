"""Background jobs: what is queued, running, done or failed, and each one's result."""
# The gate comes first: Streamlit serves a page's own address without running app.py.
from ui.auth import ensure_signed_in

ensure_signed_in()

import time

import streamlit as st

from domain.errors import DiagnosisError
from domain.jobs import DONE, FAILED, INTERRUPTED, RUNNING
from startup import get_engine
from ui import card, plain
from ui.auth import session_still_valid, visible_owner
from ui.i18n import error_text, message_text, tr
from ui.labels import provider_title

engine = get_engine()
jobs = engine.jobs
user = visible_owner()  # a user sees their own jobs, an administrator everyone's (None)

STATUS = {"queued": ("대기", "queued"), "running": ("진행 중", "running"), "done": ("완료", "done"),
          "failed": ("실패", "failed"), "interrupted": ("중단됨", "interrupted")}


def status_label(status: str) -> str:
    """A job's status in the reader's language."""
    return tr(*STATUS[status])


def when(stamp: float) -> str:
    """A Unix time as local date and time to the second, for the job table."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


st.title(tr("백그라운드 작업", "Background jobs"))
st.caption(tr("작업은 서버에 저장됩니다. 새로고침하거나 새 탭을 열어도 결과가 남아 있습니다.",
              "Jobs are kept on the server: results survive a reload, a dropped connection and a new tab."))


@st.fragment(run_every=2)
def job_board() -> None:
    """The list of jobs with their progress and results, re-drawn every 2 s so it moves on without a click."""
    # A fragment re-run skips the page's gate, so an expired session is sent through it with a full re-run.
    if not session_still_valid():
        st.rerun(scope="app")
    try:
        listed = jobs.list(user=user)
    except DiagnosisError as exc:  # the job store (the database, or Redis) does not answer: say so, try at next draw
        plain.alert("error", error_text(exc), icon=":material/cloud_off:")
        return
    if not listed:
        st.info(tr("아직 작업이 없습니다. 평가 화면에서 '백그라운드로 실행'을 누르세요.",
                   "No jobs yet. On the assessment page, press 'Run in background'."))
        return
    st.dataframe(
        [{tr("시각", "Submitted"): when(j.created_at), tr("상태", "Status"): status_label(j.status),
          tr("종류", "Kind"): tr("사진", "photo") if j.kind == "image" else tr("텍스트", "text"),
          tr("내용", "Case"): (j.text[:40] + "…") if len(j.text) > 40 else j.text,
          tr("제공자", "Provider"): j.provider or "",
          tr("소요 시간", "Elapsed"): f"{j.elapsed_ms / 1000:.1f} s" if j.elapsed_ms else "",
          "ID": j.id} for j in listed],
        hide_index=True, key="jobs_table")

    ids = [j.id for j in listed]
    wanted = st.query_params.get("job")
    if wanted in ids and st.session_state.get("jobs_pick") not in ids:
        st.session_state.jobs_pick = wanted
    by_id = {j.id: j for j in listed}
    picked = st.selectbox(tr("작업 보기", "Show job"), ids, key="jobs_pick",
                          format_func=lambda i: f"{when(by_id[i].created_at)} · {status_label(by_id[i].status)} · "
                                                f"{by_id[i].text[:30] or tr('사진', 'photo')}")
    st.query_params["job"] = picked  # a reload or a shared link opens the same job
    job = by_id[picked]
    if job.status == DONE and job.result is not None:
        card.render(job.result, provider_title(engine, job.result.provider))
    elif job.status in (FAILED, INTERRUPTED) or job.unreadable:
        # Said in this reader's language from the stored message id; a job from before ids were kept has its text.
        error = message_text(job.error_message, job.error) if job.error_message else job.error
        plain.alert("error", error or tr("작업이 실패했습니다.", "The job failed."), icon=":material/error:")
        if st.button(tr("다시 실행", "Run again"), key=f"jobs_rerun_{job.id}", type="primary"):
            try:
                st.query_params["job"] = jobs.rerun(job.id)
                st.session_state.pop("jobs_pick", None)
                st.rerun()
            except DiagnosisError as exc:  # e.g. sealed under another key: kept past the board's next re-draw
                st.session_state.jobs_refused = (job.id, exc)
        refused = st.session_state.get("jobs_refused")
        if refused and refused[0] == job.id:
            plain.alert("warning", error_text(refused[1]), icon=":material/warning:")
    elif job.status == RUNNING:
        st.info(tr("평가 중입니다…", "Assessing…"), icon=":material/progress_activity:")
    else:
        st.info(tr("차례를 기다리는 중입니다…", "Waiting for a free worker…"), icon=":material/hourglass_empty:")


job_board()
