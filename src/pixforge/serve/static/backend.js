// How the page gets a translation: the only module that knows where models run.
//
// A backend has three methods, and the page uses nothing else:
//   models()                     -> [{name, task, input_channels, trained_size, palette, class_names, ...}]
//   translate(name, pngBlob)     -> {blob, milliseconds}
//   generate(name, label, seed)  -> {blob, milliseconds}    (class-conditional models: task "class-to-image")
// ServerBackend asks this server's HTTP API. A backend that runs the ONNX export in the browser (ONNX Runtime
// Web) can take its place without touching the drawing code.

export class AuthError extends Error {}

export class ServerBackend {
  constructor(apiKey = null) {
    this.apiKey = apiKey;
  }

  headers(extra = {}) {
    return this.apiKey ? { ...extra, Authorization: `Bearer ${this.apiKey}` } : extra;
  }

  async models() {
    const response = await fetch("/v1/models", { headers: this.headers() });
    await failOnError(response);
    return (await response.json()).models;
  }

  async translate(name, blob) {
    const started = performance.now();
    const response = await fetch(`/v1/translate/${encodeURIComponent(name)}`, {
      method: "POST",
      headers: this.headers({ "Content-Type": blob.type || "application/octet-stream", Accept: "image/png" }),
      body: await blob.arrayBuffer(), // bytes rather than a Blob: DevTools (and the browser test) see the body
    });
    await failOnError(response);
    return { blob: await response.blob(), milliseconds: performance.now() - started };
  }

  async generate(name, label, seed) {
    const started = performance.now();
    const response = await fetch(`/v1/generate/${encodeURIComponent(name)}`, {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json", Accept: "image/png" }),
      body: JSON.stringify({ label, seed, count: 1 }),
    });
    await failOnError(response);
    return { blob: await response.blob(), milliseconds: performance.now() - started };
  }
}

async function failOnError(response) {
  if (response.ok) return;
  let detail = `${response.status} ${response.statusText}`;
  try {
    detail = (await response.json()).detail ?? detail; // the API's errors are {"detail": "..."}
  } catch {
    // not JSON: keep the status line
  }
  throw new (response.status === 401 ? AuthError : Error)(detail);
}
