// The page's language, where Streamlit has no API for it: the html element's lang (screen readers pick their voice and
// pronunciation by it, browsers their hyphenation and translation offer), and the reader's choice kept in a
// cookie, so a reload, a new tab or a link opened later in this browser starts in the same language.
// A plain function expression: ui/language.py calls it with its data in a script drawn through st.html, in the
// app's own document (no component runtime, which would weigh ~40 KB on the sign-in page). No tag in angle
// brackets in this file, comments included: st.html would take the body for a whole document and drop it.
((data) => {
  const lang = data && data.lang;
  if (!lang) return;
  if (document.documentElement.lang !== lang) document.documentElement.lang = lang;
  if (data.cookie) {
    const secure = window.location.protocol === "https:" ? "; Secure" : "";
    // Written again at each page load: a year from the last visit, not from the first choice.
    document.cookie = `${data.cookie}=${encodeURIComponent(lang)}; Path=/; Max-Age=${data.max_age}; SameSite=Lax${secure}`;
  }
})
