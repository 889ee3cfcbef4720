// /ui/login: the API token a person types opens a server-side session (server/api/ui.ts).
import { documentOf, Page } from './layout.tsx';

export function LoginPage({ problem }: { problem?: string }) {
  return (
    <Page title="Log in" nav={false}>
      {problem && <p class="warn" role="alert">{problem}</p>}
      {!problem?.startsWith('Too many') && (
        <form method="post" action="/ui/login">
          <p>API token (viewer or above):</p>
          <input type="password" name="token" size={48} autocomplete="current-password" autofocus />{' '}
          <button>Log in</button>
        </form>
      )}
    </Page>
  );
}

export const renderLoginPage = (props: Parameters<typeof LoginPage>[0]) => documentOf(<LoginPage {...props} />);
