// How the gateway logs in to a device (RFC 8071 §4.1 C7: with that device's own
// credentials), the way OpenSSH's client does it: a `none` request first to learn the
// methods the device offers (RFC 4252 §5.2), then each offered method it has a credential
// for, at most once per connection, following partial success (RFC 4252 §5.1).
// Keyboard-interactive prompts (RFC 4256) are answered as OpenSSH answers them for a user
// who typed the password: echo-off prompts get the password, others an empty line. A device
// that asks for the password a second time (a wrong one) is given up on, never answered in a loop.
import type { AnyAuthMethod, KeyboardInteractiveAuthMethod, Prompt } from 'ssh2';
import { GatewayError } from '../errors.js';
import type { DeviceCredentials } from '../inventory/inventory.js';

type Method = 'publickey' | 'password' | 'keyboard-interactive';

/** Order of preference among the methods a device offers (password before keyboard-interactive: no prompt to guess). */
const PREFERENCE: readonly Method[] = ['publickey', 'password', 'keyboard-interactive'];

export class DeviceLogin {
  private readonly tried: string[] = [];
  private offered: string[] | undefined;
  private passwordAnswered = false;

  /** `giveUp` ends the connection (a repeated password prompt). */
  constructor(
    private readonly creds: DeviceCredentials,
    private readonly giveUp: (reason: GatewayError) => void,
  ) {}

  /** ssh2's authHandler: the next method to try, or false when none is left. */
  next(methodsLeft: string[] | null): AnyAuthMethod | false {
    if (methodsLeft) this.offered = [...methodsLeft];
    const { username } = this.creds;
    if (this.tried.length === 0) {
      this.tried.push('none');
      return { type: 'none', username };
    }
    for (const method of PREFERENCE) {
      if (this.tried.includes(method) || !(this.offered ?? []).includes(method)) continue;
      const attempt = this.attempt(method);
      if (!attempt) continue;
      this.tried.push(method);
      return attempt;
    }
    return false;
  }

  /** For the refusal's log line: what was tried against what the device offers. */
  describe(): string {
    const tried = this.tried.filter((m) => m !== 'none');
    const offered = this.offered?.join(', ') || 'nothing';
    if (tried.length === 0) return `the device offers ${offered}, and the inventory has no credential for any of them`;
    return `tried ${tried.join(', ')}; the device offers ${offered}`;
  }

  private attempt(method: Method): AnyAuthMethod | undefined {
    const { username, password, privateKey, passphrase } = this.creds;
    switch (method) {
      case 'publickey':
        return privateKey ? { type: 'publickey', username, key: privateKey, ...(passphrase !== undefined ? { passphrase } : {}) } : undefined;
      case 'password':
        return password !== undefined ? { type: 'password', username, password } : undefined;
      case 'keyboard-interactive':
        return password !== undefined ? { type: 'keyboard-interactive', username, prompt: this.answer(password) } : undefined;
    }
  }

  // ssh2 answers a request without prompts with empty answers by itself.
  private answer(password: string): KeyboardInteractiveAuthMethod['prompt'] {
    return (_name: string, _instructions: string, _lang: string, prompts: Prompt[], finish: (answers: string[]) => void) => {
      const secret = prompts.some((p) => !p.echo);
      if (secret && this.passwordAnswered) {
        this.giveUp(new GatewayError('GW_ERR_AUTH_FAILED', 'the device asked for the password again (keyboard-interactive): it refused the inventory password'));
        return;
      }
      if (secret) this.passwordAnswered = true;
      finish(prompts.map((p) => (p.echo ? '' : password)));
    };
  }
}
