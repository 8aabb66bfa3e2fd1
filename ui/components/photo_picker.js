// The photo picker: the photo is made upright, shrunk and re-encoded on this device, so a 3 MB phone photo
// leaves it as a ~40 KB JPEG with no EXIF or GPS. Anything this browser cannot decode (HEIC outside Safari)
// is sent whole and shrunk on the server instead. The server checks and re-encodes whatever arrives either way.

const JPEG = "image/jpeg";

// Dimensions from the file's header, so that a 100-megapixel photo is refused before it is decoded into
// 400 MB of memory. Unknown layouts return null: the decoder then finds out, and the server checks again.
async function headerSize(file) {
  const head = new DataView(await file.slice(0, 256 * 1024).arrayBuffer());
  if (head.byteLength > 24 && head.getUint32(0) === 0x89504e47) {  // PNG: IHDR is the first chunk
    return [head.getUint32(16), head.getUint32(20)];
  }
  if (head.byteLength > 4 && head.getUint16(0) === 0xffd8) {  // JPEG: walk the markers to a start-of-frame
    let at = 2;
    while (at + 9 < head.byteLength) {
      if (head.getUint8(at) !== 0xff) return null;
      const marker = head.getUint8(at + 1);
      if (marker === 0xff) { at += 1; continue; }
      const length = head.getUint16(at + 2);
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return [head.getUint16(at + 7), head.getUint16(at + 5)];
      }
      at += 2 + length;
    }
  }
  return null;
}

function fitted(width, height, maxSide) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

function canvas(width, height) {
  if (typeof OffscreenCanvas !== "undefined") return new OffscreenCanvas(width, height);
  const element = document.createElement("canvas");
  element.width = width;
  element.height = height;
  return element;
}

function draw(source, width, height) {
  const target = canvas(width, height);
  const context = target.getContext("2d");
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(source, 0, 0, width, height);
  return target;
}

function encode(target, quality) {
  if (target.convertToBlob) return target.convertToBlob({ type: JPEG, quality });
  return new Promise((resolve, reject) =>
    target.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("encode"))), JPEG, quality));
}

// One draw where the canvas offers high-quality smoothing (Chromium's is mipmapped, so a 12 MP photo shrinks to
// 512 px in ~1 ms without aliasing the lesion's edges). Elsewhere, halving steps first: a single bilinear jump would
// average too few source pixels per output pixel.
async function shrink(file, maxSide, quality) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  try {
    const [width, height] = fitted(bitmap.width, bitmap.height, maxSide);
    let source = bitmap;
    let w = bitmap.width;
    let h = bitmap.height;
    const probe = canvas(1, 1).getContext("2d");
    if (!("imageSmoothingQuality" in probe)) {
      while (w / 2 >= width * 1.5 && h / 2 >= height * 1.5) {
        w = Math.round(w / 2);
        h = Math.round(h / 2);
        source = draw(source, w, h);
      }
    }
    const blob = await encode(draw(source, width, height), quality / 100);
    return { blob, width, height, originalWidth: bitmap.width, originalHeight: bitmap.height };
  } finally {
    bitmap.close();
  }
}

function base64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function size(bytes) {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} KB`;
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export default function photoPicker(component) {
  const { data, parentElement, setTriggerValue } = component;
  const { labels, maxSide, quality, maxBytes, maxPixels } = data;
  const root = parentElement.querySelector('[data-testid="photo-picker"]');
  const input = root.querySelector('[data-testid="photo-picker-input"]');
  const camera = root.querySelector('[data-testid="photo-picker-camera"]');
  const status = root.querySelector(".status");
  const preview = root.querySelector("img");
  root.querySelector(".nojs").hidden = true;
  root.querySelector(".choose-label").textContent = labels.choose;
  root.querySelector(".camera-label").textContent = labels.camera;
  root.querySelector(".drop").textContent = labels.drop;
  root.querySelector(".remove").textContent = labels.remove;
  preview.alt = labels.preview;
  // Reruns with new data (the language) call this function again on the same elements: what is shown stays.
  const pickId = () => `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

  function show(state, message, blob) {
    root.dataset.state = state;
    status.textContent = message;
    if (root.previewUrl) URL.revokeObjectURL(root.previewUrl);
    root.previewUrl = blob ? URL.createObjectURL(blob) : null;
    preview.hidden = !root.previewUrl;
    if (root.previewUrl) preview.src = root.previewUrl;
    // A refused photo keeps its remove button: the refusal says to remove the photo to assess the text alone.
    root.querySelector(".remove").hidden = state === "empty";
  }

  // Refused here, before anything travels; the server is told which refusal (with the browser's counts) so that it
  // says so too and no earlier photo is assessed in this one's place.
  function refuse(refusal, message, counts = {}) {
    show("refused", message);
    setTriggerValue("picked", { pick: pickId(), kind: "refused", refusal, ...counts });
  }

  async function sendWhole(file, reason) {
    delete root.dataset.shrinkMs;
    root.dataset.originalBytes = String(file.size);
    root.dataset.sentBytes = String(file.size);
    setTriggerValue("picked", { pick: pickId(), kind: "original", reason, b64: await base64(file),
                                original_bytes: file.size });
    show("fallback", fill(labels[reason], { size: size(file.size), type: file.type || "?" }));
  }

  async function take(file) {
    if (!file) return;
    for (const key of ["shrinkMs", "sentBytes", "originalBytes"]) delete root.dataset[key];
    if (file.size === 0) {
      refuse("empty", labels.empty);
      return;
    }
    if (file.size > maxBytes) {
      refuse("too_large", fill(labels.too_large, { size: size(file.size), limit: size(maxBytes) }),
             { original_bytes: file.size });
      return;
    }
    // Only the status line changes while the photo is shrunk: a re-layout of the page now would compete with the
    // decoding for the phone's main thread. The previous preview stays until the new one is ready.
    root.dataset.state = "working";
    status.textContent = labels.working;
    if (typeof createImageBitmap !== "function") {
      await sendWhole(file, "unsupported");
      return;
    }
    const started = performance.now();
    let shrunk;
    try {
      const dims = await headerSize(file);
      if (dims && dims[0] * dims[1] > maxPixels) {
        refuse("too_many_pixels", fill(labels.too_many_pixels, {
          width: dims[0], height: dims[1], megapixels: ((dims[0] * dims[1]) / 1e6).toFixed(0),
          limit: (maxPixels / 1e6).toFixed(0) }), { original_width: dims[0], original_height: dims[1] });
        return;
      }
      shrunk = await shrink(file, maxSide, quality);
    } catch (error) {
      await sendWhole(file, "cannot_read");
      return;
    }
    const ms = performance.now() - started;
    root.dataset.shrinkMs = ms.toFixed(1);
    root.dataset.originalBytes = String(file.size);
    root.dataset.sentBytes = String(shrunk.blob.size);
    const saved = Math.max(0, Math.round(100 * (1 - shrunk.blob.size / file.size)));
    // Sent before it is shown: an Assess pressed at the sight of the preview then reaches the server after the
    // photo (Streamlit merges the two reruns and keeps the photo), never before it.
    setTriggerValue("picked", { pick: pickId(), kind: "shrunk", b64: await base64(shrunk.blob),
                                original_bytes: file.size, original_width: shrunk.originalWidth,
                                original_height: shrunk.originalHeight, ms: Math.round(ms) });
    show("shrunk", fill(labels.shrunk, { before: size(file.size), after: size(shrunk.blob.size), saved }),
         shrunk.blob);
  }

  function chosen(event) {
    const file = event.target.files && event.target.files[0];
    event.target.value = "";  // the same file picked again is a new pick (a re-run hits the cache)
    take(file).catch(() => refuse("failed", labels.failed));
  }

  input.onchange = chosen;
  camera.onchange = chosen;
  root.ondragover = (event) => { event.preventDefault(); root.classList.add("over"); };
  root.ondragleave = () => root.classList.remove("over");
  root.ondrop = (event) => {
    event.preventDefault();
    root.classList.remove("over");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    take(file).catch(() => refuse("failed", labels.failed));
  };
  root.querySelector(".remove").onclick = () => {
    show("empty", "");
    setTriggerValue("picked", { pick: pickId(), kind: "clear" });
  };
  if (!root.dataset.state) show("empty", "");
}
