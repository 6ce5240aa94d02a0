import { useI18n } from '../i18n';
import { problemText } from '../problemText';
import type { PlacedProblem } from '../problems';

interface Props {
  problems: PlacedProblem[];
  validating: boolean;
  onPick: (problem: PlacedProblem) => void;
}

/** Every problem of the flow with its line:column; a click jumps to it in the YAML and selects its node. */
export default function ProblemsList({ problems, validating, onPick }: Props) {
  const i18n = useI18n();
  return (
    <section className="problems" data-testid="problems">
      <h2>
        {i18n.t.problems} ({problems.length}) {validating && <span className="hint">{i18n.t.validating}</span>}
      </h2>
      {problems.length === 0 ? (
        <p className="hint">{i18n.t.noProblems}</p>
      ) : (
        <ul>
          {problems.map((p, n) => (
            <li key={n} data-testid="problem-item" onClick={() => onPick(p)} data-nodes={p.nodes.join(' ')}>
              <span className="problem-pos">
                {p.line}:{p.col}
              </span>
              {p.nodes.length > 0 && <span className="problem-node">{p.nodes.join(', ')}</span>}
              <span className="problem-message" title={p.message}>
                {problemText(p.message, i18n.lang)}
              </span>
            </li>
          ))}
        </ul>
      )}
      {i18n.lang === 'zh' && problems.length > 0 && <p className="hint">{i18n.t.problemsServerLanguage}</p>}
    </section>
  );
}
