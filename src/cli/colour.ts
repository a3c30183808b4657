/**
 * Colour on a terminal only, and never when `NO_COLOR` is set to anything (https://no-color.org) or the
 * terminal is `dumb`; `FORCE_COLOR` (non-empty, not `0`) turns it on for a pipe.
 */
export function colourEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  const force = env['FORCE_COLOR'];
  if (force !== undefined && force !== '' && force !== '0') return true;
  return stream.isTTY === true && env['TERM'] !== 'dumb';
}

const codes = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
export type Colour = keyof typeof codes;

/** `text` in `colour` when `on`; the text unchanged otherwise. Only ever wraps already escaped text. */
export function paint(text: string, colour: Colour | null, on: boolean): string {
  if (!on || colour === null || text.trim() === '') return text;
  return `\x1b[${codes[colour]}m${text}\x1b[0m`;
}
