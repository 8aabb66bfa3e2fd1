// Streamlit's own words in the reader's language: its texts, placeholders, aria-labels and tooltips, which no API sets.
// A plain script (ui/streamlit_words.py runs it through st.html, so the page loads no component runtime): it defines
// window.lesionStreamlitWords(rules) once; `rules` holds [English template, the reader's template] pairs from the
// language tables ({name} = any text), none for English. Only Streamlit's own strings are rewritten: attributes anywhere (a person's or a model's words
// never become an aria-label in English on a Korean page), texts only inside Streamlit's widget chrome.
(() => {
if (window.lesionStreamlitWords) return;
const ATTRIBUTES = ["aria-label", "placeholder", "title"];
const CHROME = [
  '[data-testid="stSkipToContent"]', '[data-testid="InputInstructions"]', '[data-testid="stFileUploaderDropzone"]',
  '[data-testid="stFileUploaderFileErrorMessage"]', '[data-testid="stCameraInput"] button',
  '[data-testid="stDateInputField"]', '[data-testid="stTooltipContent"]', '[data-baseweb="tooltip"]',
].join(",");

let rules = [];                 // [RegExp, replacement template, names] for the current language
const originals = new Map();    // element or text node → {attribute or "text": Streamlit's English}
let observer = null;

function compile(pairs) {
  return pairs.map(([english, said]) => {
    const names = [];
    const source = english.split(/(\{\w+\})/).map((part) => {
      const name = /^\{(\w+)\}$/.exec(part);
      if (name) { names.push(name[1]); return "(.+?)"; }
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }).join("");
    return [new RegExp(`^${source}$`), said, names];
  });
}

function say(value) {
  let text = value.trim();
  for (let pass = 0; pass < 3; pass += 1) {  // "year, {label}" holds "{label} start date": a second pass
    const before = text;
    for (const [pattern, said, names] of rules) {
      const found = pattern.exec(text);
      if (found) {
        text = said.replace(/\{(\w+)\}/g, (_, name) => found[names.indexOf(name) + 1] ?? "");
        break;
      }
    }
    if (text === before) break;
  }
  return text === value.trim() ? null : text;
}

function remember(node, what, value) {
  if (originals.size > 5000) {  // Streamlit replaces elements as it redraws: forget the ones it dropped
    for (const old of originals.keys()) if (!old.isConnected) originals.delete(old);
  }
  const kept = originals.get(node) || {};
  if (!(what in kept)) kept[what] = value;
  originals.set(node, kept);
}

function element(node) {
  for (const name of ATTRIBUTES) {
    const value = node.getAttribute(name);
    if (!value) continue;
    // A Material icon beside its words is decoration: its name ("check_circle icon") is not read out.
    if (name === "aria-label" && / icon$/.test(value) && node.matches('[data-testid="stIconMaterial"]')) {
      remember(node, name, value);
      node.removeAttribute(name);
      node.setAttribute("aria-hidden", "true");
      continue;
    }
    const said = say(value);
    if (said !== null) { remember(node, name, value); node.setAttribute(name, said); }
  }
}

function text(node) {
  const parent = node.parentElement;
  if (!parent || !parent.closest(CHROME)) return;
  const said = say(node.textContent);
  if (said !== null) { remember(node, "text", node.textContent); node.textContent = said; }
}

function visit(root) {
  if (root.nodeType === Node.TEXT_NODE) { text(root); return; }
  if (root.nodeType !== Node.ELEMENT_NODE) return;
  element(root);
  for (const found of root.querySelectorAll("[aria-label],[placeholder],[title]")) element(found);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) text(walker.currentNode);
}

function restore() {
  for (const [node, kept] of originals) {
    for (const [what, value] of Object.entries(kept)) {
      if (what === "text") node.textContent = value; else node.setAttribute(what, value);
    }
  }
  originals.clear();
}

let current = null;
window.lesionStreamlitWords = (pairs) => {
  const wanted = JSON.stringify(pairs || []);
  if (wanted === current) return;  // every script run draws it again: only a new language changes anything
  current = wanted;
  restore();  // a language switch: Streamlit does not redraw what it thinks is unchanged
  rules = compile(pairs || []);
  if (!rules.length) return;
  if (!observer) {
    observer = new MutationObserver((changes) => {
      for (const change of changes) {
        if (change.type === "attributes") element(change.target);
        else if (change.type === "characterData") text(change.target);
        else change.addedNodes.forEach(visit);
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true,
                                      attributes: true, attributeFilter: ATTRIBUTES });
  }
  visit(document.body);
};
})();
