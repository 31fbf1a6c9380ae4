// Random examples to start from: label maps drawn in code, so the page ships no images.
//
// For the facades palette they are facade-like layouts in the manner of the CMP Facade Database: floors of
// windows with sills, cornices and blinds, balconies, moldings between floors, pillars and shops on the
// ground floor, a door, a strip of background above. Other palettes get random blocks of their classes.
// The same seed always gives the same picture.

import { fillRect, hexToRgb } from "./board.js";

/** A small seeded generator (mulberry32): uniform numbers in [0, 1). */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FACADE_CLASSES = ["background", "facade", "window", "door", "cornice", "sill", "balcony", "blind",
  "deco", "molding", "pillar", "shop"];

/** An ImageData label map of the given size for ``palette`` ({classes, colours}); ``seed`` picks which. */
export function exampleLabelMap(palette, seed, width, height) {
  const colour = {};
  palette.classes.forEach((name, i) => { colour[name] = hexToRgb(palette.colours[i]); });
  const image = new ImageData(width, height);
  const draw = (name, x, y, w, h) => fillRect(image, Math.round(x), Math.round(y), Math.round(w), Math.round(h),
    colour[name]);
  const rand = random(seed);
  const between = (lo, hi) => lo + (hi - lo) * rand();
  if (FACADE_CLASSES.every((name) => name in colour)) drawFacade(draw, rand, between, width, height);
  else drawBlocks(draw, palette.classes, rand, between, width, height);
  return image;
}

function drawFacade(draw, rand, between, width, height) {
  draw("background", 0, 0, width, height);
  const left = between(0, 0.08) * width;
  const right = width - between(0, 0.08) * width;
  const top = between(0.03, 0.18) * height;
  const facadeWidth = right - left;
  draw("facade", left, top, facadeWidth, height - top);
  draw("cornice", left - 2, top, facadeWidth + 4, Math.max(2, 0.025 * height)); // the roof's edge

  const floors = Math.floor(between(3, 6));
  const columns = Math.floor(between(2, 6));
  const groundHeight = between(0.18, 0.26) * (height - top);
  const floorHeight = (height - top - groundHeight - 0.03 * height) / floors;
  const bay = facadeWidth / columns;
  const windowWidth = bay * between(0.38, 0.6);
  const windowHeight = floorHeight * between(0.5, 0.68);
  const withBlinds = rand() < 0.4;
  const withSills = rand() < 0.8;
  const balconyFloors = new Set([...Array(floors).keys()].filter(() => rand() < 0.3));

  for (let floor = 0; floor < floors; floor++) {
    const y = top + 0.03 * height + floor * floorHeight;
    if (floor > 0 && rand() < 0.7) draw("molding", left, y - 1, facadeWidth, Math.max(1, 0.012 * height));
    const windowTop = y + (floorHeight - windowHeight) * 0.45;
    for (let col = 0; col < columns; col++) {
      const x = left + col * bay + (bay - windowWidth) / 2;
      if (rand() < 0.15) { // now and then a decoration in place of a window
        draw("deco", x + windowWidth * 0.2, windowTop + windowHeight * 0.3, windowWidth * 0.6, windowHeight * 0.3);
        continue;
      }
      draw("window", x, windowTop, windowWidth, windowHeight);
      if (rand() < 0.5) draw("cornice", x - 1, windowTop - 3, windowWidth + 2, 2);
      if (withSills) draw("sill", x - 1, windowTop + windowHeight, windowWidth + 2, Math.max(1, 0.01 * height));
      if (withBlinds) {
        const blind = windowWidth * 0.3;
        draw("blind", x - blind, windowTop, blind, windowHeight);
        draw("blind", x + windowWidth, windowTop, blind, windowHeight);
      }
    }
    if (balconyFloors.has(floor)) { // a railing across the lower part of the floor's windows
      draw("balcony", left + bay * 0.1, windowTop + windowHeight * 0.62, facadeWidth - bay * 0.2, windowHeight * 0.38);
    }
  }

  // Ground floor: pillars between the bays, shop windows, and one door.
  const groundTop = height - groundHeight;
  draw("molding", left, groundTop - 2, facadeWidth, Math.max(2, 0.015 * height));
  const doorColumn = Math.floor(rand() * columns);
  for (let col = 0; col < columns; col++) {
    const x = left + col * bay;
    draw("pillar", x, groundTop, Math.max(2, bay * 0.1), groundHeight);
    if (col === doorColumn) {
      const doorWidth = bay * between(0.35, 0.5);
      draw("door", x + (bay - doorWidth) / 2, groundTop + groundHeight * 0.2, doorWidth, groundHeight * 0.8);
    } else if (rand() < 0.8) {
      draw("shop", x + bay * 0.18, groundTop + groundHeight * 0.15, bay * 0.7, groundHeight * 0.7);
    } else {
      draw("window", x + bay * 0.25, groundTop + groundHeight * 0.2, bay * 0.5, groundHeight * 0.5);
    }
  }
  draw("pillar", right - Math.max(2, bay * 0.1), groundTop, Math.max(2, bay * 0.1), groundHeight);
}

function drawBlocks(draw, classes, rand, between, width, height) {
  draw(classes[0], 0, 0, width, height);
  for (let i = 0; i < 12; i++) {
    const name = classes[1 + Math.floor(rand() * (classes.length - 1))] ?? classes[0];
    draw(name, between(0, 0.8) * width, between(0, 0.8) * height, between(0.1, 0.4) * width,
      between(0.1, 0.4) * height);
  }
}
