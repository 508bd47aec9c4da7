import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

interface DialogProps {
  title: string;
  open: boolean;
  onClose: () => void;
  children: ComponentChildren;
}

/**
 * A modal dialog (the platform's <dialog>: focus moves in and stays in, Escape closes it, and focus
 * returns to what opened it).
 */
export function Dialog({ title, open, onClose, children }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  // Closes this component made itself: their close events (queued tasks, which the browser may run
  // after a click that has already asked for the dialog again) are not news to the owner.
  const ownCloses = useRef(0);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) {
      ownCloses.current += 1;
      dialog.close();
    }
  }, [open]);
  const id = `dialog-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <dialog
      ref={ref}
      aria-labelledby={id}
      // Escape asks the owner to close it; the element closes only when the owner's state says so.
      // Left to the platform, Escape hides it at once and reports it later (its close event is a
      // queued task): a click that reopens it in between left the state "open" and the dialog shut.
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
      onClose={() => {
        if (ownCloses.current > 0) ownCloses.current -= 1;
        else onClose();
      }}
    >
      <h2 id={id}>{title}</h2>
      {open && children}
    </dialog>
  );
}
