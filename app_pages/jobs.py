"""Background jobs: what is queued, running, done or failed, and each one's result."""
# The gate comes first: Streamlit serves a page's own address without running app.py.
from ui.auth import ensure_signed_in

ensure_signed_in()

import streamlit as st

from domain.audit import Action
from domain.errors import DiagnosisError
from domain.jobs import DONE, FAILED, INTERRUPTED, RUNNING, Job
from startup import get_engine
from ui import card, plain
from ui.audit import record_once
from ui.auth import is_admin, session_still_valid, visible_owner
from ui.i18n import error_text, message_text, t
from ui.labels import provider_title
from ui.second_reading import second_reading
from ui.viewer_time import when as shown_at

engine = get_engine()
jobs = engine.jobs
user = visible_owner()  # a user sees their own jobs, an administrator everyone's (None)


def status_label(status: str) -> str:
    """A job's status ('queued', 'running', 'done', 'failed', 'interrupted') in the reader's language."""
    return t(f"jobs.status.{status}")


def when(stamp: float) -> str:
    """A Unix time as the reader's date and time to the second, with her zone, for the job table."""
    return shown_at(stamp, seconds=True)


def visible_job(job_id: str) -> Job | None:
    """The job `job_id` when this reader may see it (their own, or any for an administrator), else None."""
    job = jobs.get(job_id)
    if job is None or (user is not None and job.user != user):
        return None
    return job


st.title(t("jobs.title"))
st.caption(t("jobs.caption"))


def _answered_by(job: Job) -> str | None:
    """The provider asked for (None: automatic), or the demo pack once it answered: its title says it is an example."""
    return job.result.provider if job.result is not None and job.result.demo else job.provider


@st.fragment(run_every=2)
def job_board() -> None:
    """The list of jobs with their progress and results, re-drawn every 2 s so it moves on without a click."""
    # A fragment re-run skips the page's gate, so an expired session is sent through it with a full re-run.
    if not session_still_valid():
        st.rerun(scope="app")
    wanted = st.query_params.get("job") or None
    try:
        listed = jobs.list(user=user)
        if wanted and wanted not in {j.id for j in listed} and (linked := visible_job(wanted)):
            listed.append(linked)  # the reader's own job, older than the list's newest 200
    except DiagnosisError as exc:  # the job store (the database, or Redis) does not answer: say so, try at next draw
        plain.alert("error", error_text(exc), icon=":material/cloud_off:")
        return
    ids = [j.id for j in listed]
    # A link decides what is shown when it is new, or when nothing is picked yet (a page just opened). A link to
    # a job that is missing or someone else's shows nothing: never this reader's newest job in its place.
    if wanted and (wanted != st.session_state.get("jobs_link") or st.session_state.get("jobs_pick") not in ids):
        st.session_state.jobs_pick = wanted if wanted in ids else None
    st.session_state.jobs_link = wanted
    if wanted and wanted not in ids and st.session_state.get("jobs_pick") not in ids:  # not once one is picked
        # The id came from a URL: shown as text. Missing and not-yours read alike, so ids cannot be probed.
        plain.alert("warning", t("jobs.not_found", id=wanted), icon=":material/link_off:")
    if not listed:
        st.info(t("jobs.empty"))
        return
    admin = is_admin()  # an administrator sees everyone's jobs, so is told whose each is
    st.dataframe(
        [{t("jobs.col.submitted"): when(j.created_at),
          **({t("jobs.col.user"): j.user or ""} if admin else {}),
          t("jobs.col.status"): status_label(j.status),
          t("jobs.col.kind"): t("kind.image") if j.kind == "image" else t("kind.text"),
          t("jobs.col.case"): (j.text[:40] + "…") if len(j.text) > 40 else j.text,
          t("jobs.col.provider"): provider_title(engine, name) if (name := _answered_by(j)) else "",
          t("jobs.col.elapsed"): t("unit.seconds", s=j.elapsed_ms / 1000) if j.elapsed_ms else "",
          t("jobs.col.id"): j.id} for j in listed],
        hide_index=True, key="jobs_table")

    by_id = {j.id: j for j in listed}
    picked: str | None = st.selectbox(t("jobs.show"), ids, key="jobs_pick",
                          format_func=lambda i: f"{when(by_id[i].created_at)} · {status_label(by_id[i].status)} · "
                                                f"{by_id[i].text[:30] or t('kind.image')}")
    if picked is None:  # the link named no job of this reader's: the URL stays as it was opened
        return
    st.query_params["job"] = picked  # a reload or a shared link opens the same job
    st.session_state.jobs_link = picked
    job = by_id[picked]
    if job.status == DONE and job.result is not None:
        # Once per job shown, not at each of the board's 2-second re-draws.
        case = job.result.assessment_id
        record_once("jobs-result", job.id, Action.CASE_VIEWED, cases=[case] if case else [], via="jobs", job=job.id)
        card.render(job.result, provider_title(engine, job.result.provider))
        second_reading(engine, job.result.assessment_id, key="job", user=st.session_state.get("user"))
    elif job.status in (FAILED, INTERRUPTED) or job.unreadable:
        # Said in this reader's language from the stored message id; a job from before ids were kept has its text.
        error = message_text(job.error_message, job.error) if job.error_message else job.error
        plain.alert("error", error or t("jobs.failed"), icon=":material/error:")
        if st.button(t("jobs.rerun"), key=f"jobs_rerun_{job.id}", type="primary"):
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
        st.info(t("jobs.assessing"), icon=":material/progress_activity:")
    else:
        st.info(t("jobs.waiting"), icon=":material/hourglass_empty:")


job_board()
