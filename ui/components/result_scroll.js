// The anchor above the Assess page's findings and card. On a phone the two columns stack, so the answer is drawn
// below the fold: bring it into view, once per assessment. On a wide screen the card is beside the inputs: do nothing.
const NARROW = "(max-width: 640px)";  // where Streamlit stacks columns (and where ui/mobile.py's rules apply)
const HANDS = ["touchstart", "wheel", "keydown", "mousedown"];  // the reader moves the page: stop following
const FOLLOW_MS = 120000;

// Streamlit calls this again whenever `data` changes and when the anchor is drawn anew (back from another page):
// remembering the nonces already served keeps a re-draw of the same assessment from scrolling the page again.
const served = new Set();

export default function ({ data, parentElement }) {
  const nonce = data && data.nonce;
  if (!nonce || served.has(nonce)) return undefined;
  served.add(nonce);
  if (!window.matchMedia(NARROW).matches) return undefined;
  const anchor = parentElement.host || parentElement;
  const place = anchor.closest('[data-testid="stElementContainer"]') || anchor;
  const page = place.closest('[data-testid="stMainBlockContainer"]') || document.body;
  const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  const bring = (behavior) => place.scrollIntoView({ block: "start", behavior });
  const arrived = () =>
    Math.abs(place.getBoundingClientRect().top - parseFloat(getComputedStyle(place).scrollMarginTop || "0")) < 4;

  // When the press starts, little is drawn below the anchor and the page cannot scroll it up to the top yet; and a
  // photo above it may finish loading later and push it down. So keep it at the top while the page changes, until
  // the reader touches or scrolls the page, the anchor goes (the next assessment, another page), or time runs out.
  const grown = new ResizeObserver(() => { if (!arrived()) bring("auto"); });
  const timer = setTimeout(() => stop(), FOLLOW_MS);
  function stop() {
    grown.disconnect();
    clearTimeout(timer);
    HANDS.forEach((name) => window.removeEventListener(name, stop, true));
  }
  HANDS.forEach((name) => window.addEventListener(name, stop, { capture: true, passive: true }));
  grown.observe(page);
  requestAnimationFrame(() => bring(still ? "auto" : "smooth"));
  return stop;  // unmounted (the next assessment, another page): no observer or listener is left behind
}
