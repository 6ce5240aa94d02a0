// A form generated from a JSON Schema (rjsf). Loaded on demand with the settings panel's first node.
import Form from '@rjsf/core';
import type { ErrorSchema, RJSFSchema, UiSchema } from '@rjsf/utils';
import validator from '@rjsf/validator-ajv8';
import type { JsonSchema } from '../types';

interface Props {
  schema: JsonSchema;
  data: Record<string, unknown>;
  onChange: (next: Record<string, unknown>) => void;
  /** Messages to show under fields: field name → messages. */
  fieldErrors: Record<string, string[]>;
  uiSchema?: UiSchema;
  testId: string;
  /** Prefixes the form's element ids (`<idPrefix>_<field>`): two forms share the panel. */
  idPrefix: string;
}

export default function SchemaForm({ schema, data, onChange, fieldErrors, uiSchema, testId, idPrefix }: Props) {
  const extraErrors = Object.fromEntries(
    Object.entries(fieldErrors).map(([field, messages]) => [field, { __errors: messages }]),
  ) as ErrorSchema;
  return (
    <div data-testid={testId}>
      <Form
        schema={schema as RJSFSchema}
        uiSchema={{ 'ui:submitButtonOptions': { norender: true }, ...uiSchema }}
        formData={data}
        idPrefix={idPrefix}
        validator={validator}
        extraErrors={extraErrors}
        showErrorList={false}
        noHtml5Validate
        // The file keeps only what the user set: defaults stay implicit, as the node's docs describe them.
        experimental_defaultFormStateBehavior={{ emptyObjectFields: 'skipDefaults' }}
        onChange={(event) => onChange((event.formData ?? {}) as Record<string, unknown>)}
      />
    </div>
  );
}
