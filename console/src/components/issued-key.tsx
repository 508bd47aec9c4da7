import { useEffect, useRef, useState } from 'preact/hooks';

interface IssuedKeyProps {
  title: string;
  apiKey: string;
  /** A sentence after the warning ("The old key keeps working for 1 day."). */
  note?: string;
  onDone: () => void;
}

/** A whole key, shown this once: a warning, the key, a copy button. */
export function IssuedKey({ title, apiKey, note, onDone }: IssuedKeyProps) {
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
      setCopied('This browser blocked copying: the key is selected, press Ctrl+C (or ⌘C) to copy it.');
    }
  };

  return (
    <section class="issued" aria-labelledby="issued-title">
      <h2 id="issued-title" ref={heading} tabIndex={-1}>
        {title}
      </h2>
      <p class="warning">
        <strong>Copy this key now.</strong> It is shown only this once: Latchkey keeps only a hash of it and cannot show it again.
        {note !== undefined && ` ${note}`}
      </p>
      <div class="copy-row">
        <label for="issued-key" class="visually-hidden">
          The new API key
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
        I have stored the key
      </button>
    </section>
  );
}
