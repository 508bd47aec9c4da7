import type { ComponentChildren, JSX } from 'preact';

interface FieldProps {
  id: string;
  label: string;
  /** Shown under the label, tied to the input by aria-describedby. */
  hint?: ComponentChildren;
  /** The API's complaint about this field, shown next to it. */
  error?: string | undefined;
  children: (aria: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: 'true' }) => JSX.Element;
}

/** A labelled form control with its hint and its error next to it. */
export function Field({ id, label, hint, error, children }: FieldProps) {
  const described = [hint !== undefined ? `${id}-hint` : '', error !== undefined ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div class={error !== undefined ? 'field invalid' : 'field'}>
      <label for={id}>{label}</label>
      {hint !== undefined && (
        <div class="hint" id={`${id}-hint`}>
          {hint}
        </div>
      )}
      {children({ id, ...(described ? { 'aria-describedby': described } : {}), ...(error !== undefined ? { 'aria-invalid': 'true' as const } : {}) })}
      {error !== undefined && (
        <div class="field-error" id={`${id}-error`}>
          {error}
        </div>
      )}
    </div>
  );
}

/** A sentence for a field error: the label, then the API's message ("must not be empty"). */
export function fieldMessage(label: string, message: string | undefined): string | undefined {
  if (message === undefined) return undefined;
  return `${label} ${message.replace(/\.$/, '')}.`;
}
