import { diffLines } from 'diff';

/** A line diff of `before` → `after`: removed lines marked −, added +, unchanged lines plain. */
export default function LineDiff({ before, after, testId }: { before: string; after: string; testId?: string }) {
  return (
    <pre className="line-diff" data-testid={testId}>
      {diffLines(before, after).map((part, n) => {
        const mark = part.added ? '+' : part.removed ? '−' : ' ';
        const lines = part.value.replace(/\n$/, '').split('\n');
        return (
          <span key={n} className={part.added ? 'diff-added' : part.removed ? 'diff-removed' : 'diff-same'}>
            {lines.map((line) => `${mark} ${line}\n`).join('')}
          </span>
        );
      })}
    </pre>
  );
}
