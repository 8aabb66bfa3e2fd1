"""The HTTP side of the one server: the original backend's API, sign-in sessions and operators' endpoints.

Mounted beside the Streamlit UI by `app.py` (`st.App` routes), in the same process and on the same
engine as the pages, so an API call and a page share the budget, the cache, the history and the jobs.
"""
