/** The account: balance and top-up, the ledger page by page, and API keys. */
import { useState } from 'preact/hooks';
import {
  type ApiError,
  type ApiKeyCreated,
  api,
  idempotencyKey,
  invalidInput,
  type LedgerEntry,
  type LedgerKind,
  toApiError,
} from '../api.ts';
import {
  CopyButton,
  Loading,
  Notice,
  PageHeading,
  ProblemAlert,
  SelectField,
  TextField,
  useAsync,
  useSubmit,
} from '../components/ui.tsx';
import { credits, ledgerKindLabel, signedCredits, when } from '../format.ts';
import { setBalance, useMe } from '../state.ts';

export function AccountPage() {
  const me = useMe();
  const [ledgerVersion, setLedgerVersion] = useState(0);
  return (
    <>
      <PageHeading title="Account" />
      <div class="grid grid--two">
        <section class="card" aria-labelledby="balance-heading">
          <h2 id="balance-heading">Balance</h2>
          <p class="big-number" data-testid="balance">
            {me ? credits(me.balance) : '—'}
          </p>
          {me && (
            <dl class="facts">
              <dt>Email</dt>
              <dd>{me.email}</dd>
              <dt>User ID</dt>
              <dd>
                <code>{me.id}</code> <CopyButton text={me.id} label="Copy ID" />
              </dd>
            </dl>
          )}
        </section>
        <TopUp onDone={() => setLedgerVersion((v) => v + 1)} />
      </div>
      <Ledger version={ledgerVersion} />
      <ApiKeys />
    </>
  );
}

function TopUp({ onDone }: { onDone: () => void }) {
  const [amount, setAmount] = useState('100');
  const [error, setError] = useState<ApiError | null>(null);
  const [disabled, setDisabled] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    const value = Number(amount);
    if (!Number.isInteger(value) || value < 1 || value > 1_000_000) {
      setError(invalidInput([{ path: '/amount', message: 'Enter a whole number between 1 and 1,000,000.' }]));
      return;
    }
    setBusy(true);
    try {
      const result = await api.topUp(value, idempotencyKey());
      setBalance(result.balance);
      setDone(`Added ${credits(result.transaction.amount)}. Your balance is now ${credits(result.balance)}.`);
      onDone();
    } catch (failure) {
      const problem = toApiError(failure);
      if (problem.status === 403) setDisabled(true);
      else setError(problem);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card" aria-labelledby="top-up-heading">
      <h2 id="top-up-heading">Add credits</h2>
      {disabled ? (
        <Notice kind="warning">
          <p class="alert-title">Self-service top-ups are turned off on this service.</p>
          <p>Ask an administrator to grant you credits, quoting your user ID.</p>
        </Notice>
      ) : (
        <form onSubmit={submit} noValidate>
          <TextField
            label="Amount (credits)"
            type="number"
            name="amount"
            inputMode="numeric"
            min={1}
            max={1_000_000}
            step={1}
            required
            value={amount}
            onValue={setAmount}
            error={error?.fieldErrors.amount}
            hint="Between 1 and 1,000,000. Stands in for a payment."
          />
          <ProblemAlert error={error} fields={['amount']} />
          <button type="submit" class="button" disabled={busy}>
            {busy ? 'Adding…' : 'Add credits'}
          </button>
        </form>
      )}
      <div aria-live="polite">{done && <Notice kind="success">{done}</Notice>}</div>
    </section>
  );
}

const PAGE_SIZE = 10;

function Ledger({ version }: { version: number }) {
  const [kind, setKind] = useState<LedgerKind | ''>('');
  // The cursors of the pages before the current one, to go back; `cursor` is the current page's.
  const [previous, setPrevious] = useState<(string | null)[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const page = useAsync(() => api.transactions({ limit: PAGE_SIZE, cursor, kind }), [cursor, kind, version]);

  const changeKind = (value: string) => {
    setKind(value as LedgerKind | '');
    setPrevious([]);
    setCursor(null);
  };

  return (
    <section class="card" aria-labelledby="ledger-heading">
      <div class="card-header">
        <h2 id="ledger-heading">Transactions</h2>
        <SelectField label="Show" value={kind} onValue={changeKind} name="kind">
          <option value="">All kinds</option>
          {Object.entries(ledgerKindLabel).map(([value, label]) => (
            <option key={value} value={value}>
              {label}s
            </option>
          ))}
        </SelectField>
      </div>
      <ProblemAlert error={page.error} />
      {page.loading && !page.data && <Loading />}
      {page.data && page.data.items.length === 0 && <p>No transactions yet.</p>}
      {page.data && page.data.items.length > 0 && (
        <div class="table-wrap">
          <table class="stack">
            <caption class="visually-hidden">Transactions, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Kind</th>
                <th scope="col" class="num">
                  Amount
                </th>
                <th scope="col" class="num">
                  Balance after
                </th>
                <th scope="col">Reference</th>
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((entry) => (
                <LedgerRow key={entry.id} entry={entry} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label="Transaction pages">
        <button
          type="button"
          class="button button--secondary button--small"
          disabled={previous.length === 0 || page.loading}
          onClick={() => {
            setCursor(previous.at(-1) ?? null);
            setPrevious(previous.slice(0, -1));
          }}
        >
          Newer
        </button>
        <span>Page {previous.length + 1}</span>
        <button
          type="button"
          class="button button--secondary button--small"
          disabled={!page.data?.nextCursor || page.loading}
          onClick={() => {
            setPrevious([...previous, cursor]);
            setCursor(page.data?.nextCursor ?? null);
          }}
        >
          Older
        </button>
      </nav>
    </section>
  );
}

function LedgerRow({ entry }: { entry: LedgerEntry }) {
  const reference = entry.predictionId
    ? `Prediction ${entry.predictionId}`
    : entry.batchId
      ? `Batch ${entry.batchId}`
      : (entry.reason ?? '');
  return (
    <tr>
      <td data-label="When">{when(entry.createdAt)}</td>
      <td data-label="Kind">{ledgerKindLabel[entry.kind] ?? entry.kind}</td>
      <td data-label="Amount" class={`num ${entry.amount < 0 ? 'negative' : 'positive'}`}>
        {signedCredits(entry.amount)}
      </td>
      <td data-label="Balance after" class="num">
        {entry.balanceAfter.toLocaleString('en-US')}
      </td>
      <td data-label="Reference" class="wrap-anywhere">
        {reference}
      </td>
    </tr>
  );
}

function ApiKeys() {
  const keys = useAsync(() => api.apiKeys(), []);
  const [name, setName] = useState('');
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const {
    busy,
    error,
    setError,
    submit: create,
  } = useSubmit(async () => {
    setCreated(await api.createApiKey(name.trim()));
    setName('');
    keys.reload();
  });

  const revoke = async (id: string) => {
    setError(null);
    try {
      await api.deleteApiKey(id);
      setConfirming(null);
      if (created?.id === id) setCreated(null);
      keys.reload();
    } catch (failure) {
      setError(toApiError(failure));
    }
  };

  return (
    <section class="card" aria-labelledby="keys-heading">
      <h2 id="keys-heading">API keys</h2>
      <p class="muted">
        Use a key as <code>Authorization: Bearer &lt;key&gt;</code> from scripts. A key acts as you and spends
        your credits.
      </p>
      <form class="inline-form" onSubmit={create} noValidate>
        <TextField
          label="Key name"
          name="keyName"
          required
          maxLength={100}
          value={name}
          onValue={setName}
          error={error?.fieldErrors.name}
          placeholder="e.g. nightly job"
        />
        <button type="submit" class="button" disabled={busy}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </form>
      <ProblemAlert error={error} fields={['name']} />
      <div aria-live="polite">
        {created && (
          <div class="alert alert--success secret" data-testid="new-api-key">
            <p class="alert-title">Key “{created.name}” created. Copy it now: it will not be shown again.</p>
            <p class="secret-value">
              <code data-testid="api-key-secret">{created.key}</code>
            </p>
            <p class="secret-actions">
              <CopyButton text={created.key} label="Copy key" />
              <button
                type="button"
                class="button button--small button--secondary"
                onClick={() => setCreated(null)}
              >
                I have saved it
              </button>
            </p>
          </div>
        )}
      </div>
      {keys.loading && !keys.data && <Loading />}
      <ProblemAlert error={keys.error} />
      {keys.data && keys.data.items.length === 0 && <p>You have no API keys.</p>}
      {keys.data && keys.data.items.length > 0 && (
        <div class="table-wrap">
          <table class="stack">
            <caption class="visually-hidden">Your API keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Starts with</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.items.map((key) => (
                <tr key={key.id}>
                  <td data-label="Name">{key.name}</td>
                  <td data-label="Starts with">
                    <code>{key.prefix}…</code>
                  </td>
                  <td data-label="Created">{when(key.createdAt)}</td>
                  <td data-label="Actions" class="actions">
                    {confirming === key.id ? (
                      <span class="action-group">
                        <button
                          type="button"
                          class="button button--small button--danger"
                          onClick={() => revoke(key.id)}
                        >
                          Revoke “{key.name}” now
                        </button>
                        <button
                          type="button"
                          class="button button--small button--secondary"
                          onClick={() => setConfirming(null)}
                        >
                          Cancel
                        </button>
                      </span>
                    ) : (
                      <button
                        type="button"
                        class="button button--small button--secondary"
                        onClick={() => setConfirming(key.id)}
                        aria-label={`Revoke ${key.name}`}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
