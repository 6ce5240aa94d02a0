// The YAML side of the split view: CodeMirror 6 with completion and hover docs from the flow schema, and
// the server's problems as diagnostics. Loaded on demand, so the canvas shows before the editor's code.
import { useEffect, useMemo, useRef } from 'react';
import CodeMirror, { EditorView, type ReactCodeMirrorRef } from '@uiw/react-codemirror';
import { yaml, yamlLanguage } from '@codemirror/lang-yaml';
import { forceLinting, linter, type Diagnostic } from '@codemirror/lint';
import { hoverTooltip } from '@codemirror/view';
import { stateExtensions } from 'codemirror-json-schema';
import { yamlCompletion, yamlSchemaHover } from 'codemirror-json-schema/yaml';
import { offsetOf } from '../problems';
import type { JsonSchema, Problem } from '../types';

export interface JumpTarget {
  line: number;
  col: number;
  /** Changes on every request, so that jumping twice to one place moves the cursor twice. */
  seq: number;
}

interface Props {
  value: string;
  onChange: (text: string) => void;
  schema: JsonSchema | null;
  problems: Problem[];
  jump: JumpTarget | null;
}

export default function YamlEditor({ value, onChange, schema, problems, jump }: Props) {
  const editor = useRef<ReactCodeMirrorRef>(null);
  const problemsRef = useRef(problems);
  problemsRef.current = problems;

  const extensions = useMemo(() => {
    const serverProblems = linter(
      (view): Diagnostic[] => {
        const text = view.state.doc.toString();
        return problemsRef.current.map((p) => {
          const from = offsetOf(text, p.line, p.col);
          const lineEnd = text.indexOf('\n', from);
          return { from, to: Math.max(from, lineEnd < 0 ? text.length : lineEnd), severity: 'error', message: p.message };
        });
      },
      { delay: 0 },
    );
    return [
      yaml(),
      yamlLanguage.data.of({ autocomplete: yamlCompletion() }),
      hoverTooltip(yamlSchemaHover()),
      stateExtensions((schema ?? undefined) as Parameters<typeof stateExtensions>[0]),
      serverProblems,
      EditorView.lineWrapping,
    ];
  }, [schema]);

  useEffect(() => {
    const view = editor.current?.view;
    if (view) forceLinting(view);
  }, [problems]);

  useEffect(() => {
    const view = editor.current?.view;
    if (!view || !jump) return;
    const pos = offsetOf(view.state.doc.toString(), jump.line, jump.col);
    view.dispatch({ selection: { anchor: pos }, effects: EditorView.scrollIntoView(pos, { y: 'center' }) });
    view.focus();
  }, [jump]);

  return (
    <div className="yaml-editor" data-testid="yaml-editor">
      <CodeMirror ref={editor} value={value} onChange={onChange} extensions={extensions} height="100%" />
    </div>
  );
}
