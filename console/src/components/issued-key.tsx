import { useEffect, useRef, useState } from 'preact/hooks';

interface IssuedKeyProps {
  title: string;
  apiKey: string;
  /** A sentence after the warning ("The old key keeps working for 1 day."). */
  note?: string;
  /** What is shown (default "key"; "signing secret" for a webhook). */
  noun?: string;
  /** The label of the field that holds it. */
  label?: string;
  /** Why it cannot be shown again. */
  why?: string;
  onDone: () => void;
}

/** A whole key or secret, shown this once: a warning, the value, a copy button. */
export function IssuedKey({
  title,
  apiKey,
  note,
  noun = 'key',
  label = 'The new API key',
  why = 'Latchkey keeps only a hash of it and cannot show it again.',
  onDone,
}: IssuedKeyProps) {
  const heading = useRef<HTMLHeadingElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState('');

  useEffect(() => {
    heading.current?.focus();
  }, [apiKey]);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(apiKey);
      setCopied('Copied to the clipboard.');
    } catch {
      input.current?.select();
      setCopied(`This browser blocked copying: the ${noun} is selected, press Ctrl+C (or ⌘C) to copy it.`);
    }
  };

  return (
    <section class="issued" aria-labelledby="issued-title">
      <h2 id="issued-title" ref={heading} tabIndex={-1}>
        {title}
      </h2>
      <p class="warning">
        <strong>Copy this {noun} now.</strong> It is shown only this once: {why}
        {note !== undefined && ` ${note}`}
      </p>
      <div class="copy-row">
        <label for="issued-key" class="visually-hidden">
          {label}
        </label>
        <input id="issued-key" ref={input} readOnly value={apiKey} spellcheck={false} autoComplete="off" onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={copy}>
          Copy
        </button>
      </div>
      <p role="status" aria-live="polite" class="status-line">
        {copied}
      </p>
      <button type="button" class="secondary" onClick={onDone}>
        I have stored the {noun}
      </button>
    </section>
  );
}
