/**
 * An 8×8 drawing pad for models that take 64 pixel intensities (0..16), like scikit-learn's digits.
 * Drawn with a mouse, a pen or a finger; with the keyboard, the arrow keys move a cursor, Space
 * toggles a cell, + and − change its intensity and Delete clears it.
 */
import { useEffect, useRef, useState } from 'preact/hooks';

export const GRID = 8;
export const MAX_INTENSITY = 16;
const SIZE = 320;

/** The first image of scikit-learn's digits data set (a zero), to try the model without drawing. */
export const SAMPLE_ZERO = [
  0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0,
  5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
];

export function emptyImage(): number[] {
  return new Array(GRID * GRID).fill(0);
}

const clamp = (value: number) => Math.max(0, Math.min(MAX_INTENSITY, value));

export function DigitsCanvas({
  value,
  onChange,
  labelId,
}: {
  value: number[];
  onChange: (next: number[]) => void;
  labelId: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const drawing = useRef<'paint' | 'erase' | null>(null);
  const [cursor, setCursor] = useState<number | null>(null);
  const [focused, setFocused] = useState(false);
  const [announcement, setAnnouncement] = useState('');
  const latest = useRef(value);
  latest.current = value;

  useEffect(() => {
    const element = canvas.current;
    const context = element?.getContext('2d');
    if (!element || !context) return;
    const cell = SIZE / GRID;
    context.clearRect(0, 0, SIZE, SIZE);
    value.forEach((intensity, index) => {
      const level = Math.round(255 - (clamp(intensity) / MAX_INTENSITY) * 255);
      context.fillStyle = `rgb(${level}, ${level}, ${level})`;
      context.fillRect((index % GRID) * cell, Math.floor(index / GRID) * cell, cell, cell);
    });
    context.strokeStyle = '#c4c9d4';
    context.lineWidth = 1;
    for (let i = 1; i < GRID; i++) {
      context.beginPath();
      context.moveTo(i * cell + 0.5, 0);
      context.lineTo(i * cell + 0.5, SIZE);
      context.moveTo(0, i * cell + 0.5);
      context.lineTo(SIZE, i * cell + 0.5);
      context.stroke();
    }
    if (focused && cursor !== null) {
      context.strokeStyle = '#c2410c';
      context.lineWidth = 4;
      context.strokeRect(
        (cursor % GRID) * cell + 2,
        Math.floor(cursor / GRID) * cell + 2,
        cell - 4,
        cell - 4,
      );
    }
  }, [value, cursor, focused]);

  const cellAt = (event: PointerEvent): number | null => {
    const element = canvas.current;
    if (!element) return null;
    const box = element.getBoundingClientRect();
    const column = Math.floor(((event.clientX - box.left) / box.width) * GRID);
    const row = Math.floor(((event.clientY - box.top) / box.height) * GRID);
    if (column < 0 || column >= GRID || row < 0 || row >= GRID) return null;
    return row * GRID + column;
  };

  /** A soft brush: the cell gets full ink and its four neighbours some, as a pen stroke would. */
  const paint = (index: number, mode: 'paint' | 'erase') => {
    const next = [...latest.current];
    const row = Math.floor(index / GRID);
    const column = index % GRID;
    next[index] = mode === 'paint' ? MAX_INTENSITY : 0;
    if (mode === 'paint') {
      for (const [dr, dc] of [
        [-1, 0],
        [1, 0],
        [0, -1],
        [0, 1],
      ] as const) {
        const r = row + dr;
        const c = column + dc;
        if (r < 0 || r >= GRID || c < 0 || c >= GRID) continue;
        const neighbour = r * GRID + c;
        next[neighbour] = Math.max(next[neighbour] ?? 0, 6);
      }
    }
    latest.current = next;
    onChange(next);
  };

  const onPointerDown = (event: PointerEvent) => {
    const index = cellAt(event);
    if (index === null) return;
    event.preventDefault();
    canvas.current?.setPointerCapture(event.pointerId);
    drawing.current = event.button === 2 || event.shiftKey ? 'erase' : 'paint';
    paint(index, drawing.current);
  };
  const onPointerMove = (event: PointerEvent) => {
    if (!drawing.current) return;
    const index = cellAt(event);
    if (index !== null) paint(index, drawing.current);
  };
  const stop = () => {
    drawing.current = null;
  };

  const setCell = (index: number, intensity: number) => {
    const next = [...latest.current];
    next[index] = clamp(intensity);
    latest.current = next;
    onChange(next);
    return next[index] ?? 0;
  };

  const onKeyDown = (event: KeyboardEvent) => {
    const at = cursor ?? 0;
    const row = Math.floor(at / GRID);
    const column = at % GRID;
    let moveTo: number | null = null;
    let intensity: number | null = null;
    switch (event.key) {
      case 'ArrowUp':
        moveTo = Math.max(0, row - 1) * GRID + column;
        break;
      case 'ArrowDown':
        moveTo = Math.min(GRID - 1, row + 1) * GRID + column;
        break;
      case 'ArrowLeft':
        moveTo = row * GRID + Math.max(0, column - 1);
        break;
      case 'ArrowRight':
        moveTo = row * GRID + Math.min(GRID - 1, column + 1);
        break;
      case ' ':
      case 'Enter':
        intensity = setCell(at, (value[at] ?? 0) > 0 ? 0 : MAX_INTENSITY);
        break;
      case '+':
      case '=':
        intensity = setCell(at, (value[at] ?? 0) + 4);
        break;
      case '-':
        intensity = setCell(at, (value[at] ?? 0) - 4);
        break;
      case 'Delete':
      case 'Backspace':
        intensity = setCell(at, 0);
        break;
      default:
        return;
    }
    event.preventDefault();
    const index = moveTo ?? at;
    setCursor(index);
    const shown = intensity ?? value[index] ?? 0;
    setAnnouncement(
      `Row ${Math.floor(index / GRID) + 1}, column ${(index % GRID) + 1}: ${shown} of ${MAX_INTENSITY}`,
    );
  };

  return (
    <div class="digits">
      <canvas
        ref={canvas}
        width={SIZE}
        height={SIZE}
        class="digits-canvas"
        tabIndex={0}
        role="img"
        aria-labelledby={labelId}
        aria-describedby={`${labelId}-help`}
        data-testid="digits-canvas"
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={stop}
        onPointerCancel={stop}
        onContextMenu={(event) => event.preventDefault()}
        onKeyDown={onKeyDown}
        onFocus={() => {
          setFocused(true);
          if (cursor === null) setCursor(0);
        }}
        onBlur={() => setFocused(false)}
      />
      <p class="hint" id={`${labelId}-help`}>
        Draw with the mouse, a pen or a finger (right-click or Shift to erase). Keyboard: arrow keys move,
        Space toggles a cell, + and − change its intensity, Delete clears it.
      </p>
      <p class="visually-hidden" aria-live="polite">
        {announcement}
      </p>
    </div>
  );
}
