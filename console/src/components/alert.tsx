import type { ComponentChildren } from 'preact';

/** An error the reader must see: announced at once by screen readers. */
export function ErrorAlert({ children }: { children: ComponentChildren }) {
  return (
    <div class="alert error" role="alert">
      {children}
    </div>
  );
}

/** A status line that screen readers announce politely ("Key revoked."). Always rendered, so changes are announced. */
export function StatusLine({ message }: { message: string }) {
  return (
    <p class="status-line" role="status" aria-live="polite">
      {message}
    </p>
  );
}

/** What an empty list means and what to do next. */
export function EmptyState({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <div class="empty">
      <h2>{title}</h2>
      {children}
    </div>
  );
}
