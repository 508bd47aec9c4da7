/** The Latchkey release, also in package.json. */
export const VERSION = '0.1.0';
