/** Small building blocks shared by the pages: fields with their errors, alerts, progress, copy. */
import type {
  ComponentChildren,
  InputHTMLAttributes,
  PartialInputHTMLAttributes,
  PartialSelectHTMLAttributes,
  SelectHTMLAttributes,
  TextareaHTMLAttributes,
} from 'preact';
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks';
import { type ApiError, toApiError } from '../api.ts';

interface FieldShellProps {
  id: string;
  label: ComponentChildren;
  hint?: ComponentChildren | undefined;
  error?: string | undefined;
  children: ComponentChildren;
  class?: string;
}

function FieldShell({ id, label, hint, error, children, class: className }: FieldShellProps) {
  return (
    <div class={`field${error ? ' field--invalid' : ''}${className ? ` ${className}` : ''}`}>
      <label for={id}>{label}</label>
      {children}
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={`${id}-error`}>
          <span aria-hidden="true">⚠ </span>
          {error}
        </p>
      )}
    </div>
  );
}

function describedBy(id: string, hint: unknown, error: unknown): string | undefined {
  const ids = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return ids || undefined;
}

/*
 * Preact types <input> and <select> as unions that tie `type` to the allowed ARIA roles; these fields
 * take no role, so the plain attribute sets are accepted and cast back when spread.
 */
type InputProps = Omit<
  PartialInputHTMLAttributes<HTMLInputElement>,
  'label' | 'value' | 'onInput' | 'role'
> & {
  type?: 'text' | 'email' | 'password' | 'number' | 'date' | 'search';
  label: ComponentChildren;
  hint?: ComponentChildren;
  error?: string | undefined;
  value: string;
  onValue: (value: string) => void;
  fieldClass?: string;
};

export function TextField({ label, hint, error, value, onValue, fieldClass, id, ...input }: InputProps) {
  const generated = useId();
  const inputId = (id as string | undefined) ?? generated;
  return (
    <FieldShell
      id={inputId}
      label={label}
      hint={hint}
      error={error}
      {...(fieldClass ? { class: fieldClass } : {})}
    >
      <input
        {...(input as InputHTMLAttributes<HTMLInputElement>)}
        id={inputId}
        value={value}
        onInput={(event) => onValue(event.currentTarget.value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy(inputId, hint, error)}
      />
    </FieldShell>
  );
}

type SelectProps = Omit<
  PartialSelectHTMLAttributes<HTMLSelectElement>,
  'label' | 'value' | 'onChange' | 'role'
> & {
  label: ComponentChildren;
  hint?: ComponentChildren;
  error?: string | undefined;
  value: string;
  onValue: (value: string) => void;
  children: ComponentChildren;
};

export function SelectField({ label, hint, error, value, onValue, children, id, ...select }: SelectProps) {
  const generated = useId();
  const selectId = (id as string | undefined) ?? generated;
  return (
    <FieldShell id={selectId} label={label} hint={hint} error={error}>
      <select
        {...(select as SelectHTMLAttributes<HTMLSelectElement>)}
        id={selectId}
        value={value}
        onChange={(event) => onValue(event.currentTarget.value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy(selectId, hint, error)}
      >
        {children}
      </select>
    </FieldShell>
  );
}

type FileProps = Omit<
  PartialInputHTMLAttributes<HTMLInputElement>,
  'label' | 'value' | 'onChange' | 'type' | 'role'
> & {
  label: ComponentChildren;
  hint?: ComponentChildren;
  error?: string | undefined;
  onFile: (file: File | null) => void;
};

export function FileField({ label, hint, error, onFile, id, ...input }: FileProps) {
  const generated = useId();
  const inputId = (id as string | undefined) ?? generated;
  return (
    <FieldShell id={inputId} label={label} hint={hint} error={error}>
      <input
        {...input}
        type="file"
        id={inputId}
        onChange={(event) => onFile(event.currentTarget.files?.[0] ?? null)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy(inputId, hint, error)}
      />
    </FieldShell>
  );
}

/**
 * An error from the API, announced to screen readers. Field errors whose field is on the form are
 * shown next to that field instead; the rest are listed here.
 */
export function ProblemAlert({
  error,
  fields = [],
  children,
}: {
  error: ApiError | null;
  fields?: string[];
  children?: ComponentChildren;
}) {
  if (!error) return null;
  const others = (error.problem.errors ?? []).filter(
    (e) => !fields.includes(e.path.replace(/^\//, '').replaceAll('/', '.')),
  );
  return (
    <div class="alert alert--error" role="alert">
      <p class="alert-title">{error.problem.title}</p>
      {error.problem.detail && error.problem.detail !== error.problem.title && <p>{error.problem.detail}</p>}
      {others.length > 0 && (
        <ul>
          {others.map((e) => (
            <li key={e.path + e.message}>
              {e.path ? <code>{e.path}</code> : null} {e.message}
            </li>
          ))}
        </ul>
      )}
      {children}
    </div>
  );
}

export function Notice({
  kind = 'info',
  children,
}: {
  kind?: 'info' | 'success' | 'warning';
  children: ComponentChildren;
}) {
  return <div class={`alert alert--${kind}`}>{children}</div>;
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="loading" role="status">
      {label}
    </p>
  );
}

export function ProgressBar({ value, label }: { value: number | null; label: string }) {
  const id = useId();
  const percent = value === null ? null : Math.round(Math.min(1, Math.max(0, value)) * 100);
  return (
    <div class="progress">
      <div class="progress-label">
        <span id={id}>{label}</span>
        {percent !== null && <span aria-hidden="true">{percent} %</span>}
      </div>
      {percent === null ? (
        <progress aria-labelledby={id} />
      ) : (
        <progress aria-labelledby={id} max={100} value={percent} />
      )}
    </div>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const timer = setTimeout(() => setState('idle'), 2500);
    return () => clearTimeout(timer);
  }, [state]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setState('copied');
    } catch {
      setState('failed');
    }
  };
  return (
    <span class="copy">
      <button type="button" class="button button--small button--secondary" onClick={copy}>
        {label}
      </button>
      <span class="copy-status" role="status">
        {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed: select the text and copy it' : ''}
      </span>
    </span>
  );
}

/**
 * A form's submit: busy while the action runs, and the problem it ended with (if any) for the form
 * to show next to its fields.
 */
export function useSubmit(action: () => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async (event?: Event) => {
    event?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (failure) {
      setError(toApiError(failure));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, submit };
}

export interface AsyncState<T> {
  data: T | undefined;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

/** Loads data when `deps` change; `reload()` runs it again. Answers that arrive out of order are dropped. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [nonce, setNonce] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    const call = ++latest.current;
    setLoading(true);
    load().then(
      (value) => {
        if (call !== latest.current) return;
        setData(value);
        setError(null);
        setLoading(false);
      },
      (failure: unknown) => {
        if (call !== latest.current) return;
        setError(toApiError(failure));
        setLoading(false);
      },
    );
  }, [...deps, nonce]);
  const reload = useCallback(() => setNonce((n) => n + 1), []);
  return { data, error, loading, reload };
}

/** Sets the document title and moves focus to the page's heading, so a route change is announced. */
export function PageHeading({ title, children }: { title: string; children?: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Credit Predictions`;
    // Only after in-app navigation: on first load the browser's own focus handling is kept.
    if (document.body.dataset.navigated === 'true') ref.current?.focus({ preventScroll: false });
  }, [title]);
  return (
    <div class="page-heading">
      <h1 ref={ref} tabIndex={-1}>
        {title}
      </h1>
      {children}
    </div>
  );
}

type TextAreaProps = Omit<TextareaHTMLAttributes<HTMLTextAreaElement>, 'label' | 'value' | 'onInput'> & {
  label: ComponentChildren;
  hint?: ComponentChildren;
  error?: string | undefined;
  value: string;
  onValue: (value: string) => void;
};

export function TextAreaField({ label, hint, error, value, onValue, id, ...textarea }: TextAreaProps) {
  const generated = useId();
  const textareaId = (id as string | undefined) ?? generated;
  return (
    <FieldShell id={textareaId} label={label} hint={hint} error={error}>
      <textarea
        {...textarea}
        id={textareaId}
        value={value}
        onInput={(event) => onValue(event.currentTarget.value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy(textareaId, hint, error)}
      />
    </FieldShell>
  );
}
