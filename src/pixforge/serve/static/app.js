// The page: wires the drawing board (board.js) to a backend that translates (backend.js).
//
// Choose a model; label-map models are drawn with their palette, image models with a few sketch colours or
// an uploaded picture, and class-conditional models get a class picker and a seed instead of a canvas. A moment after each stroke the drawing is translated; one request runs at a time and
// the newest drawing always gets translated last.

import { AuthError, ServerBackend } from "./backend.js";
import { DrawingBoard, hexToRgb } from "./board.js";
import { exampleLabelMap } from "./examples.js";

const REFRESH_DELAY_MS = 300; // after the last change: long enough not to translate every pointer move
const MAX_UPLOAD_SIDE = 1024;
const SKETCH_COLOURS = ["#000000", "#ffffff", "#808080", "#c0392b", "#2e86de", "#27ae60", "#f1c40f"];
const KEY_STORAGE = "pixforge-api-key";

const $ = (id) => document.getElementById(id);
const board = new DrawingBoard($("board"));
let backend = new ServerBackend(sessionStorage.getItem(KEY_STORAGE));
let models = [];
let model = null; // the chosen model's description from /v1/models
let exampleSeed = Math.floor(Math.random() * 1000);

// -- translation ------------------------------------------------------------------------------------
const pending = { timer: 0, busy: false, again: false, url: null };

function translateSoon() {
  clearTimeout(pending.timer);
  pending.timer = setTimeout(translateNow, REFRESH_DELAY_MS);
}

async function translateNow() {
  if (pending.busy) { // a request is under way: translate again once it is back
    pending.again = true;
    return;
  }
  pending.busy = true;
  pending.again = false;
  const name = model.name;
  try {
    const { blob, milliseconds } = model.class_names
      ? await backend.generate(name, $("class").value, Number($("seed").value) || 0)
      : await backend.translate(name, await board.toBlob());
    showResult(blob, name);
    setStatus(`${name}: ${Math.round(milliseconds)} ms`);
  } catch (error) {
    setStatus(error.message, true);
    if (error instanceof AuthError) askForKey();
  } finally {
    pending.busy = false;
    if (pending.again) translateNow();
  }
}

function showResult(blob, name) {
  if (pending.url) URL.revokeObjectURL(pending.url);
  pending.url = URL.createObjectURL(blob);
  $("result").src = pending.url;
  const link = $("download");
  link.href = pending.url;
  link.download = `pixforge-${name}.png`;
  link.setAttribute("aria-disabled", "false");
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.style.color = isError ? "#b00020" : "";
}

// -- models -------------------------------------------------------------------------------------------
async function start() {
  try {
    models = await backend.models();
  } catch (error) {
    setStatus(error.message, true);
    if (error instanceof AuthError) askForKey();
    return;
  }
  $("key-form").hidden = true;
  const select = $("model");
  select.replaceChildren(...models.map((m) => new Option(m.name, m.name)));
  const wanted = new URLSearchParams(location.search).get("model");
  select.value = models.some((m) => m.name === wanted) ? wanted : models[0].name;
  useModel(select.value);
}

function useModel(name) {
  model = models.find((m) => m.name === name);
  const generates = Boolean(model.class_names); // class-conditional: a class and a seed instead of a canvas
  $("generate").hidden = !generates;
  $("drawing").hidden = generates;
  if (generates) {
    $("task").textContent = `${model.task}, ${model.class_names.length} classes, ${model.backend}`;
    $("class").replaceChildren(...model.class_names.map((c) => new Option(c, c)));
    translateSoon();
    return;
  }
  const size = model.trained_size;
  const palette = model.palette;
  $("task").textContent = `${model.task}, ${size}×${size}, ${model.backend}`;
  if (palette) {
    board.reset(size, size, hexToRgb(palette.colours[0])); // class 0 is the eraser's and Clear's colour
    showSwatches(palette.classes.map((label, i) => ({ label, colour: palette.colours[i] })), 1);
    board.load(exampleLabelMap(palette, exampleSeed, size, size), false);
  } else {
    board.reset(size, size, [255, 255, 255]);
    showSwatches(SKETCH_COLOURS.map((colour) => ({ label: "", colour })), 0, true);
  }
  $("example").disabled = !palette;
  $("example").title = palette ? "A random example" : "Examples are label maps; this model translates images";
  updateHistoryButtons();
  translateSoon();
}

// -- tools --------------------------------------------------------------------------------------------
function showSwatches(entries, chosen, withPicker = false) {
  const container = $("palette");
  const swatches = entries.map(({ label, colour }, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "swatch";
    button.setAttribute("role", "radio");
    button.title = label || colour;
    button.dataset.colour = colour;
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.background = colour;
    button.append(chip, label);
    button.addEventListener("click", () => pickColour(colour));
    if (i === chosen) board.colour = hexToRgb(colour);
    return button;
  });
  container.replaceChildren(...swatches);
  if (withPicker) {
    const picker = document.createElement("input");
    picker.type = "color";
    picker.title = "Any colour";
    picker.addEventListener("input", () => pickColour(picker.value));
    container.append(picker);
  }
  markColour(entries[chosen].colour);
}

function pickColour(hex) {
  board.colour = hexToRgb(hex);
  if (board.tool === "eraser") chooseTool("brush");
  markColour(hex);
}

function markColour(hex) {
  for (const swatch of $("palette").querySelectorAll(".swatch")) {
    swatch.setAttribute("aria-checked", String(swatch.dataset.colour === hex));
  }
}

function chooseTool(tool) {
  board.tool = tool;
  for (const button of $("tools").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
  }
}

function chooseSize(size) {
  board.brushSize = size;
  for (const button of $("sizes").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.size) === size));
  }
}

function updateHistoryButtons() {
  $("undo").disabled = !board.canUndo;
  $("redo").disabled = !board.canRedo;
}

async function upload(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    setStatus(`${file.name}: the browser cannot read this image`, true);
    return;
  }
  const scale = Math.min(1, MAX_UPLOAD_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = !model.palette; // label colours must not blend when scaled
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  board.load(context.getImageData(0, 0, width, height));
}

function askForKey() {
  $("key-form").hidden = false;
  $("key").focus();
}

// -- wiring -------------------------------------------------------------------------------------------
board.onChange = () => {
  updateHistoryButtons();
  translateSoon();
};
$("model").addEventListener("change", (e) => useModel(e.target.value));
$("class").addEventListener("change", () => translateSoon());
$("seed").addEventListener("input", () => translateSoon());
$("new-seed").addEventListener("click", () => {
  $("seed").value = String(Number($("seed").value || 0) + 1);
  translateSoon();
});
$("tools").addEventListener("click", (e) => {
  const button = e.target.closest("button");
  if (button) chooseTool(button.dataset.tool);
});
$("sizes").addEventListener("click", (e) => {
  const button = e.target.closest("button");
  if (button) chooseSize(Number(button.dataset.size));
});
$("undo").addEventListener("click", () => board.undo());
$("redo").addEventListener("click", () => board.redo());
$("clear").addEventListener("click", () => board.clear());
$("example").addEventListener("click", () => {
  exampleSeed += 1;
  board.load(exampleLabelMap(model.palette, exampleSeed, board.canvas.width, board.canvas.height));
});
$("upload").addEventListener("change", (e) => {
  if (e.target.files.length) upload(e.target.files[0]);
  e.target.value = ""; // choosing the same file again is a change too
});
$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, $("key").value);
  backend = new ServerBackend($("key").value);
  start();
});
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") {
    e.preventDefault();
    if (e.shiftKey) board.redo(); else board.undo();
  } else if ((e.ctrlKey || e.metaKey) && key === "y") {
    e.preventDefault();
    board.redo();
  } else if (!e.ctrlKey && !e.metaKey && !e.altKey) {
    const tool = { b: "brush", r: "rect", f: "fill", e: "eraser" }[key];
    if (tool) chooseTool(tool);
  }
});

chooseSize(12);
start();
