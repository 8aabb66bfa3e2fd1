// The page's language, where Streamlit has no API for it: <html lang> (screen readers pick their voice and
// pronunciation by it, browsers their hyphenation and translation offer), and the reader's choice kept in a
// cookie, so a reload, a new tab or a link opened later in this browser starts in the same language.
// Runs in the app's own document (components v2 are not framed); Streamlit calls it again when `data` changes.
export default function ({ data }) {
  const lang = data && data.lang;
  if (!lang) return undefined;
  if (document.documentElement.lang !== lang) document.documentElement.lang = lang;
  if (data.cookie) {
    const secure = window.location.protocol === "https:" ? "; Secure" : "";
    // Written again at each page load: a year from the last visit, not from the first choice.
    document.cookie = `${data.cookie}=${encodeURIComponent(lang)}; Path=/; Max-Age=${data.max_age}; SameSite=Lax${secure}`;
  }
  return undefined;
}
