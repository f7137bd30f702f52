// Account security: the code step of a two-step sign-in, "forgot password", the
// reset and verification pages the emails link to (`/reset-password?token=`,
// `/verify-email?token=`), and the account page's section to change the password,
// verify the email and turn two-step sign-in (TOTP) on or off.

import { h, replace, errorBox, toast } from '../dom.js';
import { api, completeSignIn, renewSession } from '../api.js';
import { navigate } from '../nav.js';

/** A labelled, required input. */
export const field = (id, label, attrs = {}) => h('p', { class: 'field' },
  h('label', { for: id }, label), h('input', { id, required: true, ...attrs }));

const codeAttrs = (name) => ({
  name, autocomplete: 'one-time-code', inputmode: 'numeric', spellcheck: 'false', autocapitalize: 'off',
});

/** A form whose submit runs `action(formData)`; errors are shown in it. */
export function form(id, children, submitLabel, action) {
  const err = h('div');
  const btn = h('button', { class: 'btn primary', type: 'submit' }, submitLabel);
  const f = h('form', {
    class: 'auth', id,
    on: {
      submit: async (e) => {
        e.preventDefault();
        btn.disabled = true;
        replace(err);
        try { await action(new FormData(f), f); } catch (ex) { replace(err, errorBox(ex)); } finally { btn.disabled = false; }
      },
    },
  }, children, err, btn);
  return f;
}

/** The second step of a sign-in: a code from the authenticator app, or a recovery code. */
export function codeStep(challenge, done) {
  const f = form('mfa-form', [
    h('p', {}, 'Enter the 6-digit code your authenticator app shows, or one of your recovery codes.'),
    field('mfa-code', 'Code', codeAttrs('code')),
  ], 'Verify', async (data) => {
    await completeSignIn(challenge.mfa_token, data.get('code'));
    done();
  });
  queueMicrotask(() => f.querySelector('input')?.focus());
  return f;
}

/** "Forgot your password?": asks for a reset link; `back` returns to sign-in. */
export function forgotForm(back) {
  const box = h('div');
  const f = form('forgot-form', [
    h('p', {}, 'We will email you a link to choose a new password.'),
    field('forgot-email', 'Email', { name: 'email', type: 'email', autocomplete: 'username' }),
  ], 'Email me a link', async (data) => {
    await api('/v1/auth/password-reset', { method: 'POST', body: { email: data.get('email') } });
    replace(box, h('p', { class: 'notice', role: 'status' },
      'If an account has this email, a link to reset its password is on its way. It works once, for 30 minutes.'));
  });
  replace(box, f, h('p', {}, h('button', { type: 'button', class: 'link', on: { click: back } }, 'Back to sign in')));
  return box;
}

function tokenParam() {
  return new URLSearchParams(location.search).get('token') ?? '';
}

/** `/reset-password?token=`: choose a new password. */
export async function renderResetPassword(main) {
  document.title = 'Choose a new password — Marquee';
  const token = tokenParam();
  const f = form('reset-form', [
    field('reset-password', 'New password (8 or more characters)', { name: 'password', type: 'password', minlength: 8, autocomplete: 'new-password' }),
  ], 'Set password', async (data) => {
    await api('/v1/auth/password-reset/confirm', { method: 'POST', body: { token, new_password: data.get('password') } });
    toast('Password set. Every device was signed out: sign in with the new password.');
    navigate('/signin');
  });
  replace(main, h('section', { class: 'narrow' }, h('h1', {}, 'Choose a new password'),
    token ? f : h('p', { class: 'notice error', role: 'alert' }, 'This link has no token. Ask for a new one from the sign-in page.')));
}

/** `/verify-email?token=`: confirms the address at once. */
export async function renderVerifyEmail(main) {
  document.title = 'Verify your email — Marquee';
  const status = h('div', { role: 'status' }, h('p', {}, 'Verifying…'));
  replace(main, h('section', { class: 'narrow' }, h('h1', {}, 'Verify your email'), status));
  try {
    await api('/v1/auth/verify-email', { method: 'POST', body: { token: tokenParam() } });
    replace(status, h('p', { class: 'notice' }, 'Your email address is verified. ', h('a', { href: '/account' }, 'Go to your account')));
  } catch (e) {
    replace(status, errorBox(e), h('p', {}, 'Signed in, you can ask for a new link on ', h('a', { href: '/account' }, 'your account page'), '.'));
  }
}

/** The account page's security section for the profile `me`. */
export function securitySection(me) {
  const section = h('section', { 'aria-labelledby': 'security-h' }, h('h2', { id: 'security-h' }, 'Sign-in and security'));
  if (!me.email_verified) {
    const resend = h('button', {
      type: 'button', class: 'btn secondary small',
      on: {
        click: async () => {
          await api('/v1/me/verify-email', { method: 'POST' }).catch(() => {});
          resend.replaceWith(h('span', { role: 'status' }, 'A new link is on its way.'));
        },
      },
    }, 'Email me a new link');
    section.append(h('p', { class: 'notice', id: 'verify-notice' }, 'Your email address is not verified yet: follow the link we emailed you. ', resend));
  }
  section.append(passwordForm(), mfaBox(me));
  return section;
}

function passwordForm() {
  const details = h('details', {}, h('summary', {}, 'Change password'));
  const f = form('password-form', [
    field('pw-current', 'Current password', { name: 'current', type: 'password', autocomplete: 'current-password' }),
    field('pw-new', 'New password (8 or more characters)', { name: 'new', type: 'password', minlength: 8, autocomplete: 'new-password' }),
  ], 'Change password', async (data, el) => {
    await api('/v1/me/password', { method: 'POST', body: { current_password: data.get('current'), new_password: data.get('new') } });
    // Every other login ended; this one renews its access token.
    await renewSession();
    el.reset();
    toast('Password changed. Every other device was signed out.');
  });
  details.append(f);
  return details;
}

function mfaBox(me) {
  const box = h('div', { id: 'mfa-box' });
  const off = () => {
    const f = form('mfa-off-form', [field('mfa-off-code', 'Code (or a recovery code)', codeAttrs('code'))],
      'Turn off two-step sign-in', async (data) => {
        await api('/v1/me/mfa/totp', { method: 'DELETE', body: { code: data.get('code') } });
        toast('Two-step sign-in is off.');
        replace(box, h('p', {}, 'Two-step sign-in is off.'), startButton());
      });
    replace(box, h('p', { id: 'mfa-status' }, 'Two-step sign-in is on: signing in asks for a code from your authenticator app.'),
      h('details', {}, h('summary', {}, 'Turn it off'), f));
  };
  const startButton = () => h('button', {
    type: 'button', class: 'btn secondary', id: 'mfa-start',
    on: { click: () => enrol().catch((e) => box.append(errorBox(e))) },
  }, 'Set up two-step sign-in');
  const enrol = async () => {
    const e = await api('/v1/me/mfa/totp', { method: 'POST' });
    const f = form('mfa-confirm-form', [field('mfa-confirm-code', 'Code from the app', codeAttrs('code'))],
      'Turn on', async (data) => {
        const r = await api('/v1/me/mfa/totp/confirm', { method: 'POST', body: { code: data.get('code') } });
        showRecoveryCodes(r.recovery_codes);
      });
    replace(box,
      h('ol', { class: 'mfa-steps' },
        h('li', {}, 'Scan this code with an authenticator app (or type the key below).'),
        h('li', {}, 'Enter the 6-digit code it shows.')),
      h('img', { class: 'qr', src: `data:image/png;base64,${e.qr_png_base64}`, alt: 'QR code of the two-step sign-in key', width: 200, height: 200 }),
      h('p', {}, 'Key: ', h('code', { id: 'mfa-secret' }, e.secret)),
      f);
    f.querySelector('input').focus();
  };
  const showRecoveryCodes = (codes) => {
    replace(box,
      h('p', { class: 'notice', role: 'status', id: 'mfa-status' }, 'Two-step sign-in is on.'),
      h('p', {}, h('strong', {}, 'Recovery codes. '), 'Keep them somewhere safe: each signs you in once if you lose your phone. They are shown only now.'),
      h('ul', { class: 'recovery-codes', id: 'recovery-codes' }, codes.map((c) => h('li', {}, h('code', {}, c)))),
      h('button', { type: 'button', class: 'btn secondary', on: { click: () => navigate('/account') } }, 'I have saved them'));
  };
  if (me.mfa_enabled) off(); else replace(box, h('p', {}, 'Two-step sign-in asks for a code from an authenticator app when you sign in.'), startButton());
  return box;
}
