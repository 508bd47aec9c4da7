import { useState } from 'preact/hooks';

/**
 * Cursor paging for lists that answer `next`: the cursors of the pages seen so far, so "Previous"
 * goes back without the API having to page backwards.
 */
export function usePager(): { cursor: string | undefined; page: number; next: (cursor: string) => void; previous: () => void; reset: () => void } {
  const [stack, setStack] = useState<string[]>([]);
  return {
    cursor: stack[stack.length - 1],
    page: stack.length + 1,
    next: (cursor) => setStack((s) => [...s, cursor]),
    previous: () => setStack((s) => s.slice(0, -1)),
    reset: () => setStack([]),
  };
}

interface PagerProps {
  label: string;
  page: number;
  hasNext: boolean;
  busy: boolean;
  onPrevious: () => void;
  onNext: () => void;
}

/** "Previous" and "Next" buttons with the page number, as a labelled navigation region. */
export function Pager({ label, page, hasNext, busy, onPrevious, onNext }: PagerProps) {
  if (page === 1 && !hasNext) return null;
  return (
    <nav class="pager" aria-label={label}>
      <button type="button" class="secondary" onClick={onPrevious} disabled={busy || page === 1}>
        Previous page
      </button>
      <span aria-live="polite">Page {page}</span>
      <button type="button" class="secondary" onClick={onNext} disabled={busy || !hasNext}>
        Next page
      </button>
    </nav>
  );
}
