// The drawing board: a canvas you paint on with a brush, rectangles, flood fill and an eraser, with undo/redo.
//
// It knows nothing about models or servers: it holds pixels and says when they changed (onChange). Every
// operation writes exact colours into an ImageData buffer (no antialiasing), so a label map drawn here holds
// only palette colours, which is what a label-map model was trained on.

const HISTORY_LIMIT = 50;

export function hexToRgb(hex) {
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

export class DrawingBoard {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d", { willReadFrequently: true });
    this.tool = "brush";
    this.brushSize = 8;
    this.colour = [0, 0, 0];
    this.background = [255, 255, 255];
    this.onChange = () => {};
    this.undoStack = [];
    this.redoStack = [];
    this.stroke = null; // the operation under way while a pointer is down
    this.reset(canvas.width, canvas.height, this.background);
    canvas.addEventListener("pointerdown", (e) => this.pointerDown(e));
    canvas.addEventListener("pointermove", (e) => this.pointerMove(e));
    canvas.addEventListener("pointerup", (e) => this.pointerUp(e));
    canvas.addEventListener("pointercancel", (e) => this.pointerUp(e));
  }

  // -- the picture ---------------------------------------------------------------------------------
  /** New blank picture of the given size, filled with the background colour; forgets the history. */
  reset(width, height, background) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.background = background;
    this.pixels = new ImageData(width, height);
    fillAll(this.pixels, background);
    this.undoStack = [];
    this.redoStack = [];
    this.show();
  }

  /** Replace the picture (a random example, an uploaded image); ``undoable`` keeps the old one in history. */
  load(imageData, undoable = true) {
    if (undoable) this.remember();
    if (imageData.width !== this.pixels.width || imageData.height !== this.pixels.height) {
      this.canvas.width = imageData.width;
      this.canvas.height = imageData.height;
    }
    this.pixels = new ImageData(new Uint8ClampedArray(imageData.data), imageData.width, imageData.height);
    this.changed();
  }

  clear() {
    this.remember();
    fillAll(this.pixels, this.background);
    this.changed();
  }

  undo() {
    if (this.undoStack.length === 0) return;
    this.redoStack.push(this.snapshot());
    this.restore(this.undoStack.pop());
    this.changed();
  }

  redo() {
    if (this.redoStack.length === 0) return;
    this.undoStack.push(this.snapshot());
    this.restore(this.redoStack.pop());
    this.changed();
  }

  get canUndo() { return this.undoStack.length > 0; }
  get canRedo() { return this.redoStack.length > 0; }

  /** The picture as a PNG blob (lossless, so label colours arrive exact). */
  toBlob() {
    return new Promise((resolve, reject) => {
      this.canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("the canvas is empty"))), "image/png");
    });
  }

  // -- pointer input (mouse, pen and touch alike) ---------------------------------------------------
  pointerDown(event) {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    const point = this.toPixel(event);
    if (this.tool === "fill") {
      const before = this.snapshot();
      if (floodFill(this.pixels, point.x, point.y, this.colour)) { // false: it had that colour already
        this.remember(before);
        this.changed();
      }
      return;
    }
    this.stroke = { start: point, last: point, before: this.remember() };
    if (this.tool === "rect") {
      this.drawRect(point);
    } else {
      this.paint(point, point);
    }
  }

  pointerMove(event) {
    if (!this.stroke) return;
    event.preventDefault();
    // Coalesced events keep fast strokes smooth where the browser batches pointer moves.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const point = this.toPixel(e);
      if (this.tool === "rect") this.drawRect(point);
      else this.paint(this.stroke.last, point);
      this.stroke.last = point;
    }
  }

  pointerUp(event) {
    if (!this.stroke) return;
    if (this.canvas.hasPointerCapture(event.pointerId)) this.canvas.releasePointerCapture(event.pointerId);
    this.stroke = null;
    this.changed(); // a stroke is one step of undo, and one reason to translate again
  }

  toPixel(event) {
    const box = this.canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - box.left) * this.canvas.width) / box.width);
    const y = Math.floor(((event.clientY - box.top) * this.canvas.height) / box.height);
    return { x: clamp(x, 0, this.canvas.width - 1), y: clamp(y, 0, this.canvas.height - 1) };
  }

  // -- tools ----------------------------------------------------------------------------------------
  paint(from, to) {
    const colour = this.tool === "eraser" ? this.background : this.colour;
    const radius = this.brushSize / 2;
    const steps = Math.max(1, Math.ceil(Math.hypot(to.x - from.x, to.y - from.y) / Math.max(1, radius / 2)));
    for (let i = 0; i <= steps; i++) {
      const t = i / steps;
      stampDisc(this.pixels, from.x + (to.x - from.x) * t, from.y + (to.y - from.y) * t, radius, colour);
    }
    this.show();
  }

  drawRect(corner) {
    // Preview: the picture as it was when the drag began, plus the rectangle to the current corner.
    this.pixels.data.set(this.stroke.before.data);
    const { start } = this.stroke;
    fillRect(this.pixels, Math.min(start.x, corner.x), Math.min(start.y, corner.y),
      Math.abs(corner.x - start.x) + 1, Math.abs(corner.y - start.y) + 1, this.colour);
    this.show();
  }

  // -- history --------------------------------------------------------------------------------------
  snapshot() {
    return new ImageData(new Uint8ClampedArray(this.pixels.data), this.pixels.width, this.pixels.height);
  }

  restore(imageData) {
    this.canvas.width = imageData.width;
    this.canvas.height = imageData.height;
    this.pixels = imageData;
  }

  /** Push the picture as it was before an operation (by default: now) onto the undo stack; returns it. */
  remember(before = this.snapshot()) {
    this.undoStack.push(before);
    if (this.undoStack.length > HISTORY_LIMIT) this.undoStack.shift();
    this.redoStack = [];
    return before;
  }

  show() {
    this.context.putImageData(this.pixels, 0, 0);
  }

  changed() {
    this.show();
    this.onChange();
  }
}

// -- pixel operations on ImageData (exact colours, no antialiasing) -----------------------------------

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

function fillAll(image, [r, g, b]) {
  const d = image.data;
  for (let i = 0; i < d.length; i += 4) {
    d[i] = r; d[i + 1] = g; d[i + 2] = b; d[i + 3] = 255;
  }
}

export function fillRect(image, x0, y0, width, height, [r, g, b]) {
  const x1 = Math.min(image.width, x0 + width);
  const y1 = Math.min(image.height, y0 + height);
  const d = image.data;
  for (let y = Math.max(0, y0); y < y1; y++) {
    for (let x = Math.max(0, x0); x < x1; x++) {
      const i = (y * image.width + x) * 4;
      d[i] = r; d[i + 1] = g; d[i + 2] = b; d[i + 3] = 255;
    }
  }
}

function stampDisc(image, cx, cy, radius, colour) {
  if (radius <= 0.5) {
    fillRect(image, Math.round(cx), Math.round(cy), 1, 1, colour);
    return;
  }
  const r2 = radius * radius;
  const top = Math.floor(cy - radius);
  for (let y = top; y <= Math.ceil(cy + radius); y++) {
    const dy = y + 0.5 - cy;
    if (dy * dy > r2) continue;
    const half = Math.sqrt(r2 - dy * dy);
    const x0 = Math.round(cx - half);
    fillRect(image, x0, y, Math.round(cx + half) - x0, 1, colour);
  }
}

/** Scanline flood fill of the 4-connected region of the clicked colour; false if it had that colour already. */
export function floodFill(image, x, y, [r, g, b]) {
  const { width, height } = image;
  const pixels = new Uint32Array(image.data.buffer, image.data.byteOffset, width * height);
  const probe = new Uint8ClampedArray([r, g, b, 255]);
  const target = pixels[y * width + x];
  const replacement = new Uint32Array(probe.buffer)[0]; // the same byte order as the canvas data
  if (target === replacement) return false;
  const stack = [[x, y]];
  while (stack.length) {
    const [sx, sy] = stack.pop();
    let left = sx;
    while (left > 0 && pixels[sy * width + left - 1] === target) left--;
    let right = sx;
    while (right < width - 1 && pixels[sy * width + right + 1] === target) right++;
    for (let px = left; px <= right; px++) pixels[sy * width + px] = replacement;
    for (const ny of [sy - 1, sy + 1]) {
      if (ny < 0 || ny >= height) continue;
      let inRun = false;
      for (let px = left; px <= right; px++) {
        const match = pixels[ny * width + px] === target;
        if (match && !inRun) stack.push([px, ny]);
        inRun = match;
      }
    }
  }
  return true;
}
