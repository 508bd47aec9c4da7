import type { ComponentChildren } from 'preact';

interface CheckboxGroupProps {
  id: string;
  legend: string;
  options: Array<{ value: string; label: ComponentChildren }>;
  selected: string[];
  onChange: (selected: string[]) => void;
  /** The API's complaint about this choice, shown next to it. */
  error?: string | undefined;
  /** What an empty list of options means. */
  empty?: ComponentChildren;
}

/** A labelled set of checkboxes (a fieldset), with its error next to it. */
export function CheckboxGroup({ id, legend, options, selected, onChange, error, empty }: CheckboxGroupProps) {
  const toggle = (value: string, on: boolean) => onChange(on ? [...selected, value] : selected.filter((v) => v !== value));
  return (
    <fieldset id={id} aria-describedby={error !== undefined ? `${id}-error` : undefined} aria-invalid={error !== undefined ? 'true' : undefined}>
      <legend>{legend}</legend>
      {options.length === 0 && <p class="hint">{empty}</p>}
      <div class="checks">
        {options.map((option) => (
          <label key={option.value} class="choice">
            <input type="checkbox" name={id} value={option.value} checked={selected.includes(option.value)} onChange={(e) => toggle(option.value, e.currentTarget.checked)} /> {option.label}
          </label>
        ))}
      </div>
      {error !== undefined && (
        <div class="field-error" id={`${id}-error`}>
          {error}
        </div>
      )}
    </fieldset>
  );
}
