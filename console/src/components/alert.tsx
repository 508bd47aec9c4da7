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

/** What a page says to someone who may not use it: which permission it needs and whom to ask. */
export function NeedsPermission({ permission, what }: { permission: string; what: string }) {
  return (
    <div class="empty">
      <h2>You may not {what}</h2>
      <p>
        This page needs the <code>{permission}</code> permission, which your roles do not grant. Ask an administrator of your tenant for a role that has it.
      </p>
    </div>
  );
}
