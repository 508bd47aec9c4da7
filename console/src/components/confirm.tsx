import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { asApiError, type ApiError } from '../api';
import { ErrorAlert } from './alert';

interface ConfirmProps {
  /** The confirming button's label ("Delete", "Roll secret"). */
  action: string;
  /** Its label while `run` works ("Deleting…"). */
  busyLabel: string;
  /** A destructive action (default true): the button says so. */
  danger?: boolean;
  run: () => Promise<void>;
  onClose: () => void;
  children: ComponentChildren;
}

/** The body of a confirmation dialog: what will happen, Cancel, and the action; a refusal is shown in it. */
export function Confirm({ action, busyLabel, danger = true, run, onClose, children }: ConfirmProps) {
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const go = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await run();
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <p>{children}</p>
      {error !== undefined && <ErrorAlert>{error.message}</ErrorAlert>}
      <div class="buttons">
        <button type="button" class="secondary" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class={danger ? 'danger' : undefined} onClick={() => void go()} disabled={busy}>
          {busy ? busyLabel : action}
        </button>
      </div>
    </>
  );
}
