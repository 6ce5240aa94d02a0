// What every console view needs: its words and a way to move to another view without reloading.
import { createContext, Fragment, useContext, type ReactNode } from 'react';
import { CONSOLE_MESSAGES, type ConsoleDict } from './messages';

export interface ConsoleContextValue {
  t: ConsoleDict;
  navigate: (href: string) => void;
}

export const ConsoleContext = createContext<ConsoleContextValue>({
  t: CONSOLE_MESSAGES.en,
  navigate: (href) => window.location.assign(href),
});

export function useConsole(): ConsoleContextValue {
  return useContext(ConsoleContext);
}

/** A link inside the console: a plain click changes the view in place; any other opens the address. */
export function Link(props: { href: string; className?: string; testId?: string; children: ReactNode }) {
  const { navigate } = useConsole();
  return (
    <a
      href={props.href}
      className={props.className}
      data-testid={props.testId}
      onClick={(event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

/** A table with `headers` and `rows`, or `empty` when there are none. `id` names it for tests and styles. */
export function DataTable(props: { id: string; headers: string[]; rows: ReactNode[][]; empty: string }) {
  if (props.rows.length === 0) {
    return (
      <p className="none" id={props.id}>
        {props.empty}
      </p>
    );
  }
  return (
    <table id={props.id} className="console-table">
      <thead>
        <tr>
          {props.headers.map((header) => (
            <th key={header}>{header}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.map((row, index) => (
          <tr key={index}>
            {row.map((cell, column) => (
              <td key={column}>{cell}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A run's or node's status, coloured by its class. */
export function Status(props: { status: string; className?: string; id?: string }) {
  const { t } = useConsole();
  const name = t.statuses[props.status] ?? props.status;
  return (
    <span id={props.id} className={`${props.className ?? ''} status-${props.status}`.trim()}>
      {name}
    </span>
  );
}

/** `text` with each `{key}` replaced by its value, which may be an element (a link inside a sentence). */
export function fillNodes(text: string, values: Record<string, ReactNode>): ReactNode[] {
  return text.split(/\{(\w+)\}/).map((part, index) => (
    // Odd parts are the placeholders' names.
    <Fragment key={index}>{index % 2 === 1 ? values[part] : part}</Fragment>
  ));
}

/** Facts as a two-column table: a name, its value. */
export function FactsTable({ id, rows }: { id: string; rows: [string, ReactNode][] }) {
  return (
    <table id={id} className="console-table">
      <tbody>
        {rows.map(([key, value]) => (
          <tr key={key}>
            <th>{key}</th>
            <td>{value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A flow file's load errors, one per line. */
export function Errors({ errors }: { errors: string[] }) {
  if (errors.length === 0) return null;
  return (
    <ul className="errors">
      {errors.map((error) => (
        <li key={error}>{error}</li>
      ))}
    </ul>
  );
}
