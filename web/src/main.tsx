import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@xyflow/react/dist/style.css';
import './styles.css';
import App from './App';
import ConsoleApp from './console/ConsoleApp';
import { parseRoute } from './console/route';

// One bundle, two apps: the editor under its base (`/editor/`), the console at the old pages' addresses.
const editorBase = import.meta.env.BASE_URL;
const isEditor = parseRoute(window.location.pathname, editorBase).view === 'editor';

createRoot(document.getElementById('root')!).render(
  <StrictMode>{isEditor ? <App /> : <ConsoleApp editorBase={editorBase} />}</StrictMode>,
);
