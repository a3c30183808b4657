// eslint-disable-next-line no-control-regex -- matching control characters is the point here
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Text from elsewhere (an error message from an agent, a reason typed by another operator) made safe to
 * print on a terminal: control characters (C0, DEL, C1) are shown as `\u001b`-style escapes instead of
 * being sent raw, so they cannot move the cursor, recolour the screen or fake other output.
 */
export function safeText(text: string): string {
  return text.replace(controlCharacters, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
