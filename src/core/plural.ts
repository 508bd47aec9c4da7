/**
 * A count with its noun in the right number: `counted(1, 'data key')` is "1 data key",
 * `counted(3, 'data key')` "3 data keys". `verb` picks a verb form the same way.
 *
 * @example
 * log(`${counted(n, 'data key')} ${verb(n, 'is', 'are')} wrapped by an older master key.`);
 */
export function counted(count: number, singular: string, plural = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : plural}`;
}

export function verb(count: number, singular: string, plural: string): string {
  return count === 1 ? singular : plural;
}
