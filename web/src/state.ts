/** The signed-in user, shared by the header and the pages (the balance changes after most actions). */
import { useEffect, useState } from 'preact/hooks';
import { api, type Me } from './api.ts';

let me: Me | null = null;
const listeners = new Set<(value: Me | null) => void>();

function publish(value: Me | null) {
  me = value;
  for (const listener of listeners) listener(value);
}

export function useMe(): Me | null {
  const [value, setValue] = useState(me);
  useEffect(() => {
    listeners.add(setValue);
    setValue(me);
    return () => {
      listeners.delete(setValue);
    };
  }, []);
  return value;
}

export async function loadMe(): Promise<Me> {
  const value = await api.me();
  publish(value);
  return value;
}

/** Records a balance the API just answered with, without another round trip. */
export function setBalance(balance: number) {
  if (me) publish({ ...me, balance });
}

export function clearMe() {
  publish(null);
}
