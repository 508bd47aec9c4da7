import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  /** True from the render in which deps change until their data is in (so `aria-busy` is never stale). */
  loading: boolean;
  reload: () => Promise<void>;
}

/**
 * Loads data once, and again when deps change or on `reload()`; keeps the last data while
 * reloading. Only the latest load's answer is kept: a slow answer to older filters never
 * overwrites a newer one.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []): Loaded<T> {
  const [data, setData] = useState<T | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const [loading, setLoading] = useState(true);
  const latest = useRef(0);
  // The loader changes only with deps.
  const run = useCallback(load, deps);
  const [settled, setSettled] = useState<unknown>(undefined);
  const reload = useCallback(async () => {
    const call = ++latest.current;
    setLoading(true);
    try {
      const loaded = await run();
      if (call !== latest.current) return;
      setData(loaded);
      setError(undefined);
    } catch (err) {
      if (call !== latest.current) return;
      setError(err instanceof ApiError ? err : new ApiError('internal_error', 'Loading failed; reload the page.', 0));
    } finally {
      if (call === latest.current) {
        setLoading(false);
        setSettled(() => run);
      }
    }
  }, [run]);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { data, error, loading: loading || settled !== run, reload };
}
