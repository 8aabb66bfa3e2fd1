// After an assessment, the keyboard focus goes to the result card's heading (tabindex -1), whose name for a screen
// reader names the class, its risk and the flag: the answer is announced without hunting for it. Drawn after the
// card, so the heading is on the page; the page is not scrolled (a phone's anchor does that, a desktop stays put).
const HEADING = ".st-key-result_card h3.result-heading";
const WAIT_MS = 5000;

// Called again when `data` changes and when the element is drawn anew (a rerun, back from another page): each
// assessment's nonce moves the focus once, and never again, however often its card is drawn.
const served = new Set();

export default function ({ data }) {
  const nonce = data && data.nonce;
  if (!nonce || served.has(nonce)) return undefined;
  served.add(nonce);
  const take = () => {
    const heading = document.querySelector(HEADING);
    if (!heading) return false;
    heading.focus({ preventScroll: true });
    return true;
  };
  if (take()) return undefined;
  // The card's elements may land a frame after this one: wait for the heading, briefly.
  const watch = new MutationObserver(() => { if (take()) stop(); });
  const timer = setTimeout(() => stop(), WAIT_MS);
  function stop() {
    watch.disconnect();
    clearTimeout(timer);
  }
  watch.observe(document.body, { childList: true, subtree: true });
  return stop;
}
